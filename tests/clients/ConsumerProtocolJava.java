// Apache Kafka Java consumers (kafka-clients 3.9) in the consumer group protocol of KIP-848
// (group.protocol=consumer): the broker assigns partitions and members reconcile by heartbeat.
//
// Run as a single-file program: java -cp KAFKA_JARS ConsumerProtocolJava.java BOOTSTRAP TOPIC GROUP
//
// Creates TOPIC with 4 partitions. Members A and B join; once they own disjoint halves, 100
// records per partition are written. Then C joins and, once A, B and C own 1+1+2 disjoint
// partitions, 100 more per partition are written. Then B closes (leaves the group) and, once
// A and C own 2+2, 100 more per partition. Every member commits synchronously what it has
// read after each poll and in its revocation callback, so every record must be read exactly
// once in all. Between phases the Admin client describes the group (ConsumerGroupDescribe)
// and lists it with its type. Prints one JSON object on stdout; exits 1 with a message on
// stderr on failure. Every wait is bounded.

import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class ConsumerProtocolJava {
    static final long WAIT_MS = 60_000;

    static void fail(String msg) {
        System.err.println("FAIL: " + msg);
        System.exit(1);
    }

    static String q(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    /** One consumer and the thread that polls it. */
    static class Worker implements Runnable {
        final String name;
        final Properties props;
        final String topic;
        final Set<Integer> owned = new TreeSet<>();
        final List<String> events = new ArrayList<>();
        /** "partition:offset" of every record read. */
        final List<String> records = new ArrayList<>();
        final Map<TopicPartition, OffsetAndMetadata> pending = new HashMap<>();
        volatile boolean stop = false;
        volatile boolean finished = false;
        volatile int epoch = -2;
        volatile String memberId = null;
        volatile String error = null;

        Worker(String name, Properties props, String topic) {
            this.name = name;
            this.props = props;
            this.topic = topic;
        }

        synchronized Set<Integer> owned() {
            return new TreeSet<>(owned);
        }

        synchronized int eventCount() {
            return events.size();
        }

        synchronized List<String> records() {
            return new ArrayList<>(records);
        }

        public void run() {
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(props)) {
                c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                    public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                        if (!pending.isEmpty()) {
                            c.commitSync(pending, Duration.ofSeconds(30));
                            pending.clear();
                        }
                        synchronized (Worker.this) {
                            for (TopicPartition tp : ps) owned.remove(tp.partition());
                            events.add("revoke" + ps);
                        }
                    }

                    public void onPartitionsAssigned(Collection<TopicPartition> ps) {
                        synchronized (Worker.this) {
                            for (TopicPartition tp : ps) owned.add(tp.partition());
                            events.add("assign" + ps);
                        }
                    }
                });
                while (!stop) {
                    ConsumerRecords<byte[], byte[]> batch = c.poll(Duration.ofMillis(100));
                    for (ConsumerRecord<byte[], byte[]> r : batch) {
                        synchronized (this) {
                            records.add(r.partition() + ":" + r.offset());
                        }
                        pending.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                    }
                    if (!pending.isEmpty()) {
                        c.commitSync(pending, Duration.ofSeconds(30));
                        pending.clear();
                    }
                    ConsumerGroupMetadata md = c.groupMetadata();
                    epoch = md.generationId();
                    memberId = md.memberId();
                }
            } catch (Throwable t) {
                error = t.toString();
            } finally {
                finished = true;
            }
        }
    }

    static Worker start(String name, Properties common, String group, String topic) {
        Properties p = new Properties();
        p.putAll(common);
        p.put("group.id", group);
        p.put("group.protocol", "consumer");
        p.put("client.id", "java-" + name);
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "earliest");
        p.put("max.poll.interval.ms", "30000");
        Worker w = new Worker(name, p, topic);
        Thread t = new Thread(w, "consumer-" + name);
        t.setDaemon(true);
        t.start();
        return w;
    }

    /** Waits until the workers own disjoint sets covering 0..3 with the given sizes, stable for 1.5 s. */
    static Map<String, Set<Integer>> settle(List<Worker> workers, List<Integer> sizes, String what) throws Exception {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (true) {
            if (System.currentTimeMillis() > deadline) {
                StringBuilder sb = new StringBuilder();
                for (Worker w : workers) sb.append(w.name).append("=").append(w.owned()).append(w.events).append(" ");
                fail(what + ": no settled assignment " + sizes + ": " + sb);
            }
            for (Worker w : workers) if (w.error != null) fail(w.name + ": " + w.error);
            Map<String, Set<Integer>> now = new TreeMap<>();
            Set<Integer> union = new TreeSet<>();
            List<Integer> got = new ArrayList<>();
            int total = 0;
            for (Worker w : workers) {
                Set<Integer> o = w.owned();
                now.put(w.name, o);
                union.addAll(o);
                got.add(o.size());
                total += o.size();
            }
            Collections.sort(got);
            if (got.equals(sizes) && total == union.size() && union.equals(Set.of(0, 1, 2, 3))) {
                int events = workers.stream().mapToInt(Worker::eventCount).sum();
                Thread.sleep(1500);
                boolean same = workers.stream().mapToInt(Worker::eventCount).sum() == events;
                for (Worker w : workers) same &= w.owned().equals(now.get(w.name));
                if (same) return now;
            }
            Thread.sleep(50);
        }
    }

    static void produce(Properties common, String topic, int perPartition, String tag) throws Exception {
        Properties pp = new Properties();
        pp.putAll(common);
        pp.put("key.serializer", ByteArraySerializer.class.getName());
        pp.put("value.serializer", ByteArraySerializer.class.getName());
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp)) {
            for (int i = 0; i < perPartition; i++) {
                for (int p = 0; p < 4; p++) {
                    producer.send(new ProducerRecord<>(topic, p, null, (tag + "-" + p + "-" + i).getBytes()));
                }
            }
            producer.flush();
        }
    }

    static int totalRecords(List<Worker> all) {
        return all.stream().mapToInt(w -> w.records().size()).sum();
    }

    static void awaitRecords(List<Worker> all, int total, String what) throws Exception {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (totalRecords(all) < total) {
            if (System.currentTimeMillis() > deadline) fail(what + ": " + totalRecords(all) + " of " + total + " records");
            for (Worker w : all) if (w.error != null) fail(w.name + ": " + w.error);
            Thread.sleep(50);
        }
        Thread.sleep(1000); // anything read twice would show up now
    }

    /** The group as the Admin client describes it: state, epoch-free member view. */
    static String describe(Admin admin, String group, List<Worker> workers) throws Exception {
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS).get(group);
        Map<String, String> byClient = new TreeMap<>();
        for (MemberDescription m : d.members()) {
            List<Integer> ps = m.assignment().topicPartitions().stream().map(TopicPartition::partition).sorted().collect(Collectors.toList());
            byClient.put(m.clientId(), ps.toString());
        }
        Optional<GroupType> type = admin.listConsumerGroups(new ListConsumerGroupsOptions().withTypes(Set.of(GroupType.CONSUMER)))
            .all().get(30, TimeUnit.SECONDS).stream()
            .filter(l -> l.groupId().equals(group)).findFirst().flatMap(ConsumerGroupListing::type);
        return "{\"state\": " + q(d.state().toString()) + ", \"assignor\": " + q(d.partitionAssignor())
            + ", \"type\": " + q(type.map(GroupType::toString).orElse("none"))
            + ", \"members\": {" + byClient.entrySet().stream().map(e -> q(e.getKey()) + ": " + q(e.getValue())).collect(Collectors.joining(", ")) + "}}";
    }

    static String owned(Map<String, Set<Integer>> m) {
        return "{" + m.entrySet().stream().map(e -> q(e.getKey()) + ": " + e.getValue()).collect(Collectors.joining(", ")) + "}";
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) fail("usage: ConsumerProtocolJava BOOTSTRAP TOPIC GROUP");
        String bootstrap = args[0], topic = args[1], group = args[2];
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        common.put("request.timeout.ms", "30000");
        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(topic, 4, (short) 1))).all().get(60, TimeUnit.SECONDS);

            Worker a = start("A", common, group, topic);
            Worker b = start("B", common, group, topic);
            List<Worker> all = new ArrayList<>(List.of(a, b));
            Map<String, Set<Integer>> ab = settle(List.of(a, b), List.of(2, 2), "A+B");
            String describedAb = describe(admin, group, List.of(a, b));
            produce(common, topic, 100, "p1");
            awaitRecords(all, 400, "phase 1");

            Worker c = start("C", common, group, topic);
            all.add(c);
            Map<String, Set<Integer>> abc = settle(List.of(a, b, c), List.of(1, 1, 2), "C joined");
            produce(common, topic, 100, "p2");
            awaitRecords(all, 800, "phase 2");

            b.stop = true;
            long deadline = System.currentTimeMillis() + WAIT_MS;
            while (!b.finished) {
                if (System.currentTimeMillis() > deadline) fail("B did not close");
                Thread.sleep(20);
            }
            if (b.error != null) fail("B: " + b.error);
            Map<String, Set<Integer>> ac = settle(List.of(a, c), List.of(2, 2), "B left");
            String describedAc = describe(admin, group, List.of(a, c));
            produce(common, topic, 100, "p3");
            awaitRecords(all, 1200, "phase 3");

            // Every record exactly once, across all members.
            Map<String, Integer> seen = new HashMap<>();
            for (Worker w : all) for (String r : w.records()) seen.merge(r, 1, Integer::sum);
            List<String> duplicates = seen.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).sorted().collect(Collectors.toList());
            int missing = 0;
            for (int p = 0; p < 4; p++) for (int o = 0; o < 300; o++) if (!seen.containsKey(p + ":" + o)) missing++;

            for (Worker w : List.of(a, c)) w.stop = true;
            for (Worker w : List.of(a, c)) {
                while (!w.finished) {
                    if (System.currentTimeMillis() > deadline + WAIT_MS) fail(w.name + " did not close");
                    Thread.sleep(20);
                }
                if (w.error != null) fail(w.name + ": " + w.error);
            }
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group)
                .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            String committedJson = committed.entrySet().stream().sorted(Comparator.comparing(e -> e.getKey().partition()))
                .map(e -> q(String.valueOf(e.getKey().partition())) + ": " + e.getValue().offset()).collect(Collectors.joining(", "));

            System.out.println("{\"ab\": " + owned(ab) + ", \"abc\": " + owned(abc) + ", \"ac\": " + owned(ac)
                + ", \"records\": " + totalRecords(all) + ", \"distinct\": " + seen.size()
                + ", \"duplicates\": " + duplicates.stream().map(ConsumerProtocolJava::q).collect(Collectors.toList())
                + ", \"missing\": " + missing
                + ", \"member_ids\": [" + q(a.memberId) + ", " + q(b.memberId) + ", " + q(c.memberId) + "]"
                + ", \"epochs\": [" + a.epoch + ", " + c.epoch + "]"
                + ", \"described_ab\": " + describedAb + ", \"described_ac\": " + describedAc
                + ", \"committed\": {" + committedJson + "}}");
        }
        System.exit(0);
    }
}
