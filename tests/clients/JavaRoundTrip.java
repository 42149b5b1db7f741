// The Apache Kafka Java client (kafka-clients 3.9.1) against a Strom broker.
//
// Run as a single-file program: java -cp KAFKA_JARS JavaRoundTrip.java BOOTSTRAP
//
// Admin: createTopics (3 partitions, a config), describeTopics, describeConfigs.
// Producer at its defaults (3.x: enable.idempotence=true, acks=all): keyed records with
// headers and timestamps; the default partitioner puts each key on murmur2(key) % 3.
// One producer per compression codec (gzip, snappy, lz4, zstd).
// Consumer without group.id (manual assignment): every record comes back byte-exact at the
// offset the producer was told. ListOffsets by timestamp (offsetsForTimes).
// Prints one JSON object on stdout; exits 1 with a message on stderr on failure.

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.Utils;

public class JavaRoundTrip {
    static final List<String> mismatches = new ArrayList<>();

    static void fail(String msg) {
        System.err.println("FAIL: " + msg);
        System.exit(1);
    }

    static String q(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    record Sent(byte[] key, byte[] value, List<Header> headers, long ts, int partition, long offset) {}

    public static void main(String[] args) throws Exception {
        if (args.length != 1) fail("usage: JavaRoundTrip BOOTSTRAP");
        String bootstrap = args[0];
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        common.put("request.timeout.ms", "30000");

        // ---- admin
        String topic = "java-roundtrip";
        String retention = null;
        int describedPartitions;
        try (Admin admin = Admin.create(common)) {
            NewTopic nt = new NewTopic(topic, 3, (short) 1).configs(Map.of("retention.ms", "3600000"));
            List<NewTopic> topics = new ArrayList<>(List.of(nt));
            for (String codec : List.of("gzip", "snappy", "lz4", "zstd")) {
                topics.add(new NewTopic("java-" + codec, 1, (short) 1));
            }
            admin.createTopics(topics).all().get(60, TimeUnit.SECONDS);
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get(60, TimeUnit.SECONDS).get(topic);
            describedPartitions = d.partitions().size();
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Config cfg = admin.describeConfigs(List.of(res)).all().get(60, TimeUnit.SECONDS).get(res);
            ConfigEntry e = cfg.get("retention.ms");
            retention = e == null ? null : e.value();
        }

        // ---- producer at its defaults
        Properties pp = new Properties();
        pp.putAll(common);
        pp.put("key.serializer", ByteArraySerializer.class.getName());
        pp.put("value.serializer", ByteArraySerializer.class.getName());
        Random rnd = new Random(31337);
        List<Sent> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp)) {
            List<Future<RecordMetadata>> futures = new ArrayList<>();
            List<Object[]> pending = new ArrayList<>();
            for (int i = 0; i < 300; i++) {
                byte[] key = ("java-key-" + i).getBytes(StandardCharsets.UTF_8);
                byte[] value = new byte[rnd.nextInt(3) == 0 ? 0 : rnd.nextInt(3000)];
                rnd.nextBytes(value);
                List<Header> headers = new ArrayList<>();
                if (i % 2 == 1) {
                    headers.add(new RecordHeader("idx", Integer.toString(i).getBytes(StandardCharsets.UTF_8)));
                    headers.add(new RecordHeader("nullv", null));
                }
                long ts = 1_670_000_000_000L + i * 11L;
                futures.add(producer.send(new ProducerRecord<>(topic, null, ts, key, value, headers)));
                pending.add(new Object[] {key, value, headers, ts});
            }
            producer.flush();
            for (int i = 0; i < futures.size(); i++) {
                RecordMetadata md = futures.get(i).get(60, TimeUnit.SECONDS);
                Object[] p = pending.get(i);
                @SuppressWarnings("unchecked")
                List<Header> h = (List<Header>) p[2];
                sent.add(new Sent((byte[]) p[0], (byte[]) p[1], h, (Long) p[3], md.partition(), md.offset()));
            }
        }
        Map<Integer, Integer> perPartition = new TreeMap<>();
        for (int i = 0; i < sent.size(); i++) {
            Sent s = sent.get(i);
            int want = Utils.toPositive(Utils.murmur2(s.key())) % 3;
            if (s.partition() != want) mismatches.add("record " + i + " on partition " + s.partition() + ", murmur2 says " + want);
            int n = perPartition.getOrDefault(s.partition(), 0);
            if (s.offset() != n) mismatches.add("record " + i + " acked at offset " + s.offset() + ", expected " + n + " on partition " + s.partition());
            perPartition.put(s.partition(), n + 1);
        }
        checkConsumed(common, topic, 3, sent);

        // ---- every compression codec
        Map<String, Integer> codecCounts = new TreeMap<>();
        for (String codec : List.of("gzip", "snappy", "lz4", "zstd")) {
            String t = "java-" + codec;
            Properties cp = new Properties();
            cp.putAll(pp);
            cp.put("compression.type", codec);
            cp.put("linger.ms", "20");
            List<Sent> cs = new ArrayList<>();
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(cp)) {
                List<Future<RecordMetadata>> futures = new ArrayList<>();
                List<byte[]> values = new ArrayList<>();
                for (int i = 0; i < 500; i++) {
                    byte[] v = (codec + " value " + i + " ").repeat(1 + i % 10).getBytes(StandardCharsets.UTF_8);
                    values.add(v);
                    futures.add(producer.send(new ProducerRecord<>(t, 0, 1_680_000_000_000L + i, ("k" + i).getBytes(StandardCharsets.UTF_8), v)));
                }
                producer.flush();
                for (int i = 0; i < 500; i++) {
                    RecordMetadata md = futures.get(i).get(60, TimeUnit.SECONDS);
                    cs.add(new Sent(("k" + i).getBytes(StandardCharsets.UTF_8), values.get(i), List.of(), 1_680_000_000_000L + i, md.partition(), md.offset()));
                }
            }
            codecCounts.put(codec, checkConsumed(common, t, 1, cs));
        }

        // ---- ListOffsets by timestamp: 5 ms before the record at offset 10 of partition 0
        // (the record before it on that partition is at least 11 ms older) finds offset 10.
        Sent probe = null;
        for (Sent s : sent) if (s.partition() == 0 && s.offset() == 10) probe = s;
        if (probe == null) fail("no record at offset 10 of partition 0");
        long timesAnswer;
        Properties cp = consumerProps(common);
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp)) {
            TopicPartition tp = new TopicPartition(topic, probe.partition());
            Map<TopicPartition, OffsetAndTimestamp> r = c.offsetsForTimes(Map.of(tp, probe.ts() - 5), Duration.ofSeconds(30));
            OffsetAndTimestamp ot = r.get(tp);
            timesAnswer = ot == null ? -1 : ot.offset();
        }

        StringBuilder out = new StringBuilder("{");
        out.append("\"described_partitions\":").append(describedPartitions);
        out.append(",\"retention.ms\":").append(retention == null ? "null" : q(retention));
        out.append(",\"produced\":").append(sent.size());
        out.append(",\"idempotence_default\":").append(q(String.valueOf(new ProducerConfig(pp).getBoolean("enable.idempotence"))));
        out.append(",\"partitions_used\":").append(perPartition.keySet());
        out.append(",\"codec_consumed\":{");
        boolean first = true;
        for (Map.Entry<String, Integer> e : codecCounts.entrySet()) {
            if (!first) out.append(",");
            first = false;
            out.append(q(e.getKey())).append(":").append(e.getValue());
        }
        out.append("},\"offset_for_time\":").append(timesAnswer);
        out.append(",\"mismatches\":[");
        for (int i = 0; i < Math.min(mismatches.size(), 20); i++) {
            if (i > 0) out.append(",");
            out.append(q(mismatches.get(i)));
        }
        out.append("]}");
        System.out.println(out);
    }

    static Properties consumerProps(Properties common) {
        Properties cp = new Properties();
        cp.putAll(common);
        cp.put("key.deserializer", ByteArrayDeserializer.class.getName());
        cp.put("value.deserializer", ByteArrayDeserializer.class.getName());
        cp.put("enable.auto.commit", "false");
        cp.put("auto.offset.reset", "none");
        return cp;
    }

    /** Read every partition of `topic` from the beginning and compare with `sent`. */
    static int checkConsumed(Properties common, String topic, int partitions, List<Sent> sent) {
        Map<String, ConsumerRecord<byte[], byte[]>> got = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(common))) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) tps.add(new TopicPartition(topic, p));
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.currentTimeMillis() + 60_000;
            while (got.size() < sent.size()) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    String pos = r.partition() + "/" + r.offset();
                    if (got.put(pos, r) != null) mismatches.add(topic + ": duplicate " + pos);
                }
                if (System.currentTimeMillis() > deadline) fail(topic + ": consumed " + got.size() + " of " + sent.size() + " within 60s");
            }
            for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(300))) {
                mismatches.add(topic + ": unexpected extra record " + r.partition() + "/" + r.offset());
            }
        }
        int n = got.size();
        for (int i = 0; i < sent.size(); i++) {
            Sent s = sent.get(i);
            ConsumerRecord<byte[], byte[]> r = got.get(s.partition() + "/" + s.offset());
            String at = topic + " record " + i + " at " + s.partition() + "/" + s.offset();
            if (r == null) {
                mismatches.add(at + ": missing");
                continue;
            }
            if (!Arrays.equals(r.key(), s.key())) mismatches.add(at + ": key differs");
            if (!Arrays.equals(r.value(), s.value())) mismatches.add(at + ": value differs");
            if (r.timestamp() != s.ts() || r.timestampType() != org.apache.kafka.common.record.TimestampType.CREATE_TIME)
                mismatches.add(at + ": timestamp " + r.timestampType() + " " + r.timestamp() + " != " + s.ts());
            Header[] hs = r.headers().toArray();
            if (hs.length != s.headers().size()) {
                mismatches.add(at + ": " + hs.length + " headers, expected " + s.headers().size());
            } else {
                for (int j = 0; j < hs.length; j++) {
                    Header e = s.headers().get(j);
                    if (!hs[j].key().equals(e.key()) || !Arrays.equals(hs[j].value(), e.value()))
                        mismatches.add(at + ": header " + j + " differs (" + hs[j].key() + ")");
                }
            }
        }
        return n;
    }
}
