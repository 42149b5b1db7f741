// A long-running Apache Kafka Java consumer (kafka-clients 3.9) in the consumer group
// protocol of KIP-848 (group.protocol=consumer), for tests that act on it while it runs
// (SIGSTOP, broker restarts).
//
// Run as a single-file program: java -cp KAFKA_JARS ConsumerProtocolMember.java BOOTSTRAP TOPIC GROUP NAME
//
// Subscribes to TOPIC in GROUP with client.id NAME and prints one JSON event per line:
// {"ev":"assign"|"revoke"|"lost","partitions":[...]}, {"ev":"record","p":P,"o":O} for every
// record (committed synchronously before the next poll), {"ev":"member_id","id":ID} when the
// member id changes, {"ev":"error",...} for a failed commit or poll. Each event has "t", the
// wall clock in ms. Runs until killed.

import java.time.Duration;
import java.util.*;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class ConsumerProtocolMember {
    static synchronized void out(String json) {
        System.out.println(json.substring(0, json.length() - 1) + ", \"t\": " + System.currentTimeMillis() + "}");
        System.out.flush();
    }

    static String q(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    static String partitions(Collection<TopicPartition> ps) {
        return ps.stream().map(TopicPartition::partition).sorted().map(String::valueOf).collect(Collectors.joining(", ", "[", "]"));
    }

    public static void main(String[] args) {
        if (args.length != 4) {
            System.err.println("usage: ConsumerProtocolMember BOOTSTRAP TOPIC GROUP NAME");
            System.exit(2);
        }
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("group.id", args[2]);
        p.put("group.protocol", "consumer");
        p.put("client.id", args[3]);
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "earliest");
        p.put("request.timeout.ms", "30000");
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            c.subscribe(List.of(args[1]), new ConsumerRebalanceListener() {
                public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                    if (!ps.isEmpty()) out("{\"ev\": \"revoke\", \"partitions\": " + partitions(ps) + "}");
                }

                public void onPartitionsAssigned(Collection<TopicPartition> ps) {
                    if (!ps.isEmpty()) out("{\"ev\": \"assign\", \"partitions\": " + partitions(ps) + "}");
                }

                public void onPartitionsLost(Collection<TopicPartition> ps) {
                    if (!ps.isEmpty()) out("{\"ev\": \"lost\", \"partitions\": " + partitions(ps) + "}");
                }
            });
            String memberId = "";
            while (true) {
                ConsumerRecords<byte[], byte[]> batch;
                try {
                    batch = c.poll(Duration.ofMillis(100));
                } catch (Exception e) {
                    out("{\"ev\": \"error\", \"error\": " + q(e.toString()) + "}");
                    continue;
                }
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    out("{\"ev\": \"record\", \"p\": " + r.partition() + ", \"o\": " + r.offset() + "}");
                    try {
                        c.commitSync(Map.of(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1)),
                            Duration.ofSeconds(30));
                    } catch (Exception e) {
                        out("{\"ev\": \"commit_failed\", \"p\": " + r.partition() + ", \"o\": " + r.offset() + ", \"error\": " + q(e.toString()) + "}");
                    }
                }
                String id = c.groupMetadata().memberId();
                if (!id.isEmpty() && !id.equals(memberId)) {
                    memberId = id;
                    out("{\"ev\": \"member_id\", \"id\": " + q(id) + "}");
                }
            }
        }
    }
}
