// KafkaJS (pure JavaScript, its own protocol code) against a real strom broker. Each
// scenario prints one JSON line of findings; tests/kafkajs.rs judges them.
//
//   node kafkajs_scenarios.js roundtrip BOOTSTRAP
//   node kafkajs_scenarios.js admin BOOTSTRAP
//   node kafkajs_scenarios.js rebalance BOOTSTRAP
//   node kafkajs_scenarios.js sasl-ssl BOOTSTRAP CA_PEM USER PASSWORD TOPIC GROUP
//   node kafkajs_scenarios.js partitioner-plugin BOOTSTRAP PLUGIN_REF
'use strict';

const fs = require('fs');
const { Kafka, logLevel, CompressionTypes, Partitioners } = require('kafkajs');

const [scenario, bootstrap, ...rest] = process.argv.slice(2);

function client(extra = {}) {
  return new Kafka({
    clientId: 'strom-kafkajs-test',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    ...extra,
  });
}
const kafka = client();

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function until(what, ms, check) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Starts a consumer group member reading `topic` from the beginning and waits until
// `count` records have been handed to `onMessage`; returns the member, still in its group.
async function consumeFromStart(kafka, groupId, topic, count, onMessage) {
  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let seen = 0;
  let done;
  const all = new Promise((resolve) => (done = resolve));
  await consumer.run({
    eachMessage: async (payload) => {
      onMessage(payload);
      if (++seen === count) done();
    },
  });
  await withTimeout(all, 60000, `reading ${count} records of ${topic} (got ${seen})`);
  return consumer;
}

// An idempotent producer sends 100 keyed records with headers (uncompressed) and 10 more
// with GZIP; a consumer group reads them all back. Every record must come back byte-exact,
// in the partition KafkaJS's default (Java-compatible murmur2) partitioner chose, at the
// offset the produce response implies; the group's committed offsets must end at the high
// watermarks.
async function roundtrip() {
  const topic = `kjs-roundtrip-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  const partitionMetadata = metadata.topics[0].partitions;

  const choose = Partitioners.DefaultPartitioner();
  const producer = kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const sends = [
    { compression: CompressionTypes.None, count: 100, prefix: 'plain' },
    { compression: CompressionTypes.GZIP, count: 10, prefix: 'gzip' },
  ];
  const expected = new Map(); // "partition/offset" -> record
  for (const send of sends) {
    const messages = [];
    for (let i = 0; i < send.count; i++) {
      messages.push({
        key: `${send.prefix}-key-${i}`,
        value: `${send.prefix}-value-${i}-${'x'.repeat(i % 7)}`,
        headers: { seq: String(i), kind: send.prefix },
      });
    }
    const results = await producer.send({ topic, messages, acks: -1, compression: send.compression });
    const next = new Map(results.map((r) => [r.partition, Number(r.baseOffset)]));
    for (const message of messages) {
      const partition = choose({ topic, partitionMetadata, message });
      const offset = next.get(partition);
      if (offset === undefined) throw new Error(`no produce result for partition ${partition}`);
      next.set(partition, offset + 1);
      expected.set(`${partition}/${offset}`, message);
    }
  }
  await producer.disconnect();

  const groupId = `g-${topic}`;
  const mismatches = [];
  const seen = new Set();
  let consumed = 0;
  const consumer = await consumeFromStart(kafka, groupId, topic, expected.size, ({ partition, message }) => {
    consumed++;
    const at = `${partition}/${message.offset}`;
    const want = expected.get(at);
    const got = {
      key: message.key && message.key.toString(),
      value: message.value && message.value.toString(),
      headers: Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, v.toString()])),
    };
    if (!want) {
      mismatches.push({ at, unexpected: got });
    } else if (
      got.key !== want.key ||
      got.value !== want.value ||
      JSON.stringify(got.headers) !== JSON.stringify(want.headers)
    ) {
      mismatches.push({ at, want, got });
    }
    seen.add(at);
  });
  for (const at of expected.keys()) if (!seen.has(at)) mismatches.push({ at, missing: true });

  const watermarks = await admin.fetchTopicOffsets(topic);
  const high = Object.fromEntries(watermarks.map((p) => [p.partition, p.high]));
  // Auto-commit runs in the background: wait until the group's offsets reach the ends.
  const committed = await until('committed offsets at the high watermarks', 30000, async () => {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const byPartition = Object.fromEntries(offsets.partitions.map((p) => [p.partition, p.offset]));
    return JSON.stringify(byPartition) === JSON.stringify(high) ? byPartition : null;
  });
  const described = (await admin.describeGroups([groupId])).groups[0];
  await consumer.disconnect();
  await admin.disconnect();
  console.log(
    JSON.stringify({
      produced: expected.size,
      consumed,
      distinct: seen.size,
      partitions_used: [...new Set([...expected.keys()].map((k) => Number(k.split('/')[0])))].sort(),
      high_watermarks: high,
      committed,
      group_state: described.state,
      group_protocol: described.protocol,
      group_members: described.members.length,
      mismatches,
    })
  );
}

function errorType(e) {
  return e && (e.type || (e.errors && e.errors[0] && e.errors[0].type) || e.name);
}

// The admin client: topic configs and their sources, a second create, more partitions,
// DeleteRecords, offsets by time, group offsets set and read back, deleting groups and
// topics, DescribeCluster.
async function admin() {
  const topic = `kjs-admin-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  const out = {};
  out.created = await admin.createTopics({
    topics: [{ topic, numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '123456' }] }],
    waitForLeaders: true,
  });
  // KafkaJS answers TOPIC_ALREADY_EXISTS with `false` rather than an error.
  try {
    out.create_again = await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
  } catch (e) {
    out.create_again = errorType(e);
  }
  const describe = async (names) =>
    Object.fromEntries(
      (await admin.describeConfigs({ resources: [{ type: 2, name: topic, configNames: names }] })).resources[0].configEntries.map(
        (c) => [c.configName, { value: c.configValue, source: c.configSource, default: c.isDefault }]
      )
    );
  out.configs = await describe(['retention.ms', 'cleanup.policy']);
  await admin.alterConfigs({ resources: [{ type: 2, name: topic, configEntries: [{ name: 'retention.ms', value: '654321' }] }] });
  out.configs_after_alter = await describe(['retention.ms']);

  await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] });
  out.partitions_after_create = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions
    .map((p) => p.partitionId)
    .sort();

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const before = Date.now();
  await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: 0, value: `v${i}`, timestamp: String(before + i * 1000) })) });
  await producer.disconnect();
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '4' }] });
  out.offsets_after_delete_records = (await admin.fetchTopicOffsets(topic))
    .sort((a, b) => a.partition - b.partition)
    .map((p) => [p.partition, Number(p.low), Number(p.high)]);
  // Record i has timestamp before + i s: the first at or after before + 6.5 s is offset 7.
  out.offset_for_time = (await admin.fetchTopicOffsetsByTimestamp(topic, before + 6500)).find((p) => p.partition === 0).offset;

  const groupId = `g-${topic}`;
  await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '6' }, { partition: 1, offset: '0' }] });
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
  out.group_offsets = Object.fromEntries(offsets.partitions.map((p) => [p.partition, p.offset]));
  out.groups_listed = (await admin.listGroups()).groups.some((g) => g.groupId === groupId);
  out.delete_groups = (await admin.deleteGroups([groupId])).map((g) => g.errorCode);
  out.groups_listed_after_delete = (await admin.listGroups()).groups.some((g) => g.groupId === groupId);

  const cluster = await admin.describeCluster();
  out.cluster = { brokers: cluster.brokers.length, controller: cluster.controller, has_id: !!cluster.clusterId };
  await admin.deleteTopics({ topics: [topic] });
  out.listed_after_delete = (await admin.listTopics()).includes(topic);
  await admin.disconnect();
  console.log(JSON.stringify(out));
}

// Two consumers in one group over four partitions: each gets two, none twice; when one
// leaves, the other is given all four and reads a record produced to each afterwards.
async function rebalance() {
  const topic = `kjs-rebalance-${Date.now()}`;
  const groupId = `g-${topic}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
  const assignments = {};
  const received = { a: [], b: [] };
  const consumers = {};
  for (const name of ['a', 'b']) {
    const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, rebalanceTimeout: 10000 });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      assignments[name] = (e.payload.memberAssignment[topic] || []).slice().sort();
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        received[name].push([partition, message.value.toString()]);
      },
    });
    consumers[name] = consumer;
  }
  const split = await until('both members assigned', 60000, async () =>
    assignments.a && assignments.b && assignments.a.length + assignments.b.length === 4 ? { ...assignments } : null
  );
  await consumers.b.disconnect();
  const alone = await until('the remaining member given all partitions', 60000, async () =>
    assignments.a && assignments.a.length === 4 ? assignments.a : null
  );
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  await producer.send({ topic, messages: [0, 1, 2, 3].map((p) => ({ partition: p, value: `after-${p}` })) });
  await producer.disconnect();
  await until('the remaining member reading every partition', 60000, async () => received.a.length >= 4);
  await consumers.a.disconnect();
  const described = (await admin.describeGroups([groupId])).groups[0];
  await admin.disconnect();
  console.log(
    JSON.stringify({
      split,
      alone,
      received_by_a: received.a.sort(),
      received_by_b: received.b,
      state_after_all_left: described.state,
    })
  );
}

// SASL_SSL with SCRAM-SHA-512: the broker's certificate verified against the CA, an
// idempotent producer and a consumer group round-trip 20 records as USER; the same user with
// a wrong password fails to connect, with the time it took to say so.
async function saslSsl() {
  const [ca, user, password, topic, groupId] = rest;
  const secured = (pw, extra = {}) =>
    client({
      ssl: { ca: [fs.readFileSync(ca, 'utf8')], servername: 'localhost' },
      sasl: { mechanism: 'scram-sha-512', username: user, password: pw },
      ...extra,
    });
  const kafka = secured(password);
  const producer = kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const values = Array.from({ length: 20 }, (_, i) => `kafkajs-value-${i}`);
  const sent = await producer.send({ topic, acks: -1, messages: values.map((value) => ({ value })) });
  await producer.disconnect();
  const consumed = [];
  const consumer = await consumeFromStart(kafka, groupId, topic, values.length, ({ message }) =>
    consumed.push(message.value.toString())
  );
  await consumer.disconnect();

  const started = Date.now();
  let wrongPasswordError = 'no error';
  // No retries: a refused login is final, and the time measured is the broker's answer.
  const wrong = secured(`${password}-wrong`, { retry: { retries: 0 } }).producer();
  try {
    await wrong.connect();
  } catch (e) {
    wrongPasswordError = e.name;
  }
  const wrongPasswordSeconds = (Date.now() - started) / 1000;
  console.log(
    JSON.stringify({
      produced_base_offset: Number(sent[0].baseOffset),
      consumed,
      wrong_password_error: wrongPasswordError,
      wrong_password_s: wrongPasswordSeconds,
    })
  );
}

// A partitioner plugin (PLUGIN_REF, uploaded by the test: Kafka's murmur2) attached and
// re-configured through KafkaJS's admin client alone. In enforce mode, records KafkaJS's
// default partitioner places are stored and records sent to another partition are refused
// with INVALID_RECORD; after AlterConfigs switches to route mode, misrouted records are
// accepted and stored where the plugin (and KafkaJS's partitioner) would have put them.
async function partitionerPlugin() {
  const [plugin] = rest;
  const topic = `kjs-plugin-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  const attach = (mode) => [
    { name: 'partitioner', value: plugin },
    { name: 'partitioner.mode', value: mode },
  ];
  await admin.createTopics({ topics: [{ topic, numPartitions: 4, configEntries: attach('enforce') }], waitForLeaders: true });
  const partitionMetadata = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions;
  const choose = Partitioners.DefaultPartitioner();
  const right = (key) => choose({ topic, partitionMetadata, message: { key } });
  const out = {};
  const configs = async () =>
    Object.fromEntries(
      (await admin.describeConfigs({ resources: [{ type: 2, name: topic, configNames: ['partitioner', 'partitioner.mode'] }] })).resources[0].configEntries.map(
        (c) => [c.configName, c.configValue]
      )
    );
  out.configs_enforce = await configs();

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, retry: { retries: 0 } });
  await producer.connect();
  const keyed = Array.from({ length: 40 }, (_, i) => ({ key: `key-${i}`, value: `keyed-${i}` }));
  await producer.send({ topic, acks: -1, messages: keyed });
  const misrouted = (tag) =>
    [0, 1, 2].map((i) => {
      const key = `${tag}-${i}`;
      return { key, value: `${tag}-value-${i}`, partition: (right(key) + 1 + i) % 4 };
    });
  out.enforce_refusals = [];
  for (const message of misrouted('refused')) {
    try {
      await producer.send({ topic, acks: -1, messages: [message] });
      out.enforce_refusals.push('stored');
    } catch (e) {
      out.enforce_refusals.push(errorType(e));
    }
  }
  const highWatermarkSum = async () => (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
  out.high_watermark_sum_after_enforce = await highWatermarkSum();

  await admin.alterConfigs({ resources: [{ type: 2, name: topic, configEntries: attach('route') }] });
  out.configs_route = await configs();
  const routed = misrouted('routed');
  for (const message of routed) await producer.send({ topic, acks: -1, messages: [message] });
  await producer.disconnect();
  out.high_watermark_sum_after_route = await highWatermarkSum();

  // Read everything back and check where each record landed.
  const landed = [];
  const consumer = await consumeFromStart(kafka, `g-${topic}`, topic, keyed.length + routed.length, ({ partition, message }) =>
    landed.push({ key: message.key.toString(), partition })
  );
  await consumer.disconnect();
  await admin.disconnect();
  out.consumed = landed.length;
  out.misplaced = landed.filter((r) => r.partition !== right(r.key));
  out.routed_keys_stored = landed.filter((r) => r.key.startsWith('routed-')).map((r) => r.key).sort();
  out.refused_keys_stored = landed.filter((r) => r.key.startsWith('refused-')).length;
  console.log(JSON.stringify(out));
}

const scenarios = { roundtrip, admin, rebalance, 'sasl-ssl': saslSsl, 'partitioner-plugin': partitionerPlugin };
if (!scenarios[scenario] || !bootstrap) {
  console.error(`usage: node kafkajs_scenarios.js (${Object.keys(scenarios).join('|')}) BOOTSTRAP`);
  process.exit(2);
}
scenarios[scenario]()
  .then(() => process.exit(0))
  .catch((e) => {
    console.error('FAILED:', e);
    process.exit(1);
  });
