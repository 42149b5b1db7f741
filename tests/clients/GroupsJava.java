// Two Apache Kafka Java consumers (kafka-clients 3.9, classic group protocol) share a topic.
//
// Run as a single-file program: java -cp KAFKA_JARS GroupsJava.java BOOTSTRAP TOPIC GROUP
//
// Creates TOPIC with 4 partitions; two consumers of GROUP (each polled by its own thread, as
// the client requires) join before any record exists. Once they own disjoint halves, 100
// records are written to every partition; each consumer must read exactly the records of its
// own partitions. Then each commits synchronously and reports its generation and member id
// (ConsumerGroupMetadata), and leaves. Prints one JSON object on stdout; exits 1 with a
// message on stderr on failure. Every wait is bounded.

import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class GroupsJava {
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
        final Map<Integer, List<Long>> records = new TreeMap<>();
        final AtomicInteger delivered;
        volatile boolean stop = false;
        volatile boolean finished = false;
        volatile int generation = -2;
        volatile String memberId = null;
        volatile String error = null;

        Worker(String name, Properties props, String topic, AtomicInteger delivered) {
            this.name = name;
            this.props = props;
            this.topic = topic;
            this.delivered = delivered;
        }

        synchronized Set<Integer> owned() {
            return new TreeSet<>(owned);
        }

        synchronized int eventCount() {
            return events.size();
        }

        public void run() {
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(props)) {
                c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                    public void onPartitionsRevoked(Collection<TopicPartition> ps) {
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
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) {
                        synchronized (this) {
                            records.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r.offset());
                        }
                        delivered.incrementAndGet();
                    }
                }
                c.commitSync(Duration.ofSeconds(30));
                ConsumerGroupMetadata md = c.groupMetadata();
                generation = md.generationId();
                memberId = md.memberId();
            } catch (Throwable t) {
                error = t.toString();
            } finally {
                finished = true;
            }
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) fail("usage: GroupsJava BOOTSTRAP TOPIC GROUP");
        String bootstrap = args[0], topic = args[1], group = args[2];
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        common.put("request.timeout.ms", "30000");
        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(topic, 4, (short) 1))).all().get(60, TimeUnit.SECONDS);
        }

        AtomicInteger delivered = new AtomicInteger();
        List<Worker> workers = new ArrayList<>();
        for (String name : List.of("A", "B")) {
            Properties p = new Properties();
            p.putAll(common);
            p.put("group.id", group);
            p.put("client.id", "java-" + name);
            p.put("key.deserializer", ByteArrayDeserializer.class.getName());
            p.put("value.deserializer", ByteArrayDeserializer.class.getName());
            p.put("enable.auto.commit", "false");
            p.put("auto.offset.reset", "earliest");
            p.put("session.timeout.ms", "6000");
            p.put("heartbeat.interval.ms", "500");
            p.put("max.poll.interval.ms", "30000");
            Worker w = new Worker(name, p, topic, delivered);
            workers.add(w);
            Thread t = new Thread(w, "consumer-" + name);
            t.setDaemon(true);
            t.start();
        }

        // Wait for two disjoint halves, stable for 1.5 s.
        long deadline = System.currentTimeMillis() + WAIT_MS;
        Map<String, Set<Integer>> settled = null;
        int eventsAtSettle = 0;
        while (settled == null) {
            if (System.currentTimeMillis() > deadline) {
                fail("no settled assignment: A=" + workers.get(0).owned() + " B=" + workers.get(1).owned());
            }
            for (Worker w : workers) if (w.error != null) fail(w.name + ": " + w.error);
            Set<Integer> a = workers.get(0).owned(), b = workers.get(1).owned();
            Set<Integer> union = new TreeSet<>(a);
            union.addAll(b);
            if (a.size() == 2 && b.size() == 2 && union.equals(Set.of(0, 1, 2, 3))) {
                int events = workers.get(0).eventCount() + workers.get(1).eventCount();
                Thread.sleep(1500);
                if (workers.get(0).owned().equals(a) && workers.get(1).owned().equals(b)
                        && workers.get(0).eventCount() + workers.get(1).eventCount() == events) {
                    settled = new LinkedHashMap<>();
                    settled.put("A", a);
                    settled.put("B", b);
                    eventsAtSettle = events;
                }
            } else {
                Thread.sleep(50);
            }
        }

        Properties pp = new Properties();
        pp.putAll(common);
        pp.put("key.serializer", ByteArraySerializer.class.getName());
        pp.put("value.serializer", ByteArraySerializer.class.getName());
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp)) {
            for (int i = 0; i < 100; i++) {
                for (int p = 0; p < 4; p++) {
                    producer.send(new ProducerRecord<>(topic, p, null, ("j-" + p + "-" + i).getBytes()));
                }
            }
            producer.flush();
        }
        deadline = System.currentTimeMillis() + WAIT_MS;
        while (delivered.get() < 400) {
            if (System.currentTimeMillis() > deadline) fail("only " + delivered.get() + " of 400 records consumed");
            for (Worker w : workers) if (w.error != null) fail(w.name + ": " + w.error);
            Thread.sleep(50);
        }
        Thread.sleep(1000);
        int eventsAfter = workers.get(0).eventCount() + workers.get(1).eventCount() - eventsAtSettle;
        for (Worker w : workers) w.stop = true;
        deadline = System.currentTimeMillis() + WAIT_MS;
        for (Worker w : workers) {
            while (!w.finished) {
                if (System.currentTimeMillis() > deadline) fail(w.name + " did not finish");
                Thread.sleep(20);
            }
            if (w.error != null) fail(w.name + ": " + w.error);
        }

        StringBuilder json = new StringBuilder("{");
        json.append("\"delivered\":").append(delivered.get());
        json.append(",\"events_after_settle\":").append(eventsAfter);
        for (Worker w : workers) {
            json.append(",").append(q(w.name)).append(":{");
            json.append("\"assignment\":").append(settled.get(w.name).toString().replace(" ", ""));
            json.append(",\"generation\":").append(w.generation);
            json.append(",\"member_id\":").append(q(String.valueOf(w.memberId)));
            json.append(",\"records\":{");
            boolean first = true;
            for (Map.Entry<Integer, List<Long>> e : w.records.entrySet()) {
                List<Long> os = e.getValue();
                if (!first) json.append(",");
                first = false;
                json.append(q(e.getKey().toString())).append(":[").append(os.size()).append(",")
                        .append(new HashSet<>(os).size()).append(",").append(Collections.min(os)).append(",")
                        .append(Collections.max(os)).append("]");
            }
            json.append("}}");
        }
        json.append("}");
        System.out.println(json);
    }
}
