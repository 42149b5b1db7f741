// Kafka's default partitioner for keyed records, as a Strom plugin written in JavaScript.
//
// The same choice as the Rust plugin `plugins/murmur2-partitioner`, the Java client and
// librdkafka's `murmur2_random`: toPositive(murmur2(key)) % partitions. A record without a
// key is placed by the murmur2 of its value (partition 0 without one), as the Rust plugin
// does: a choice that depends only on the record, so client and broker agree.
//
// componentize-js turns this module into a component of world `partitioner-plugin`
// (wit/strom-plugin.wit): the exported interface `partitioner` is the object of that name,
// WIT names become camelCase, `list<u8>` is a Uint8Array, `option` is a value or undefined,
// and a thrown object becomes the `err` case of the result.

const INVALID_RECORD = 87;

// Kafka's Utils.murmur2 (seed 0x9747b28c), as an unsigned 32-bit number.
function murmur2(data) {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = (0x9747b28c ^ length) >>> 0;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)) >>> 0;
    k = Math.imul(k, m) >>> 0;
    k = (k ^ (k >>> 24)) >>> 0;
    k = Math.imul(k, m) >>> 0;
    h = Math.imul(h, m) >>> 0;
    h = (h ^ k) >>> 0;
  }
  switch (length & 3) {
    case 3:
      h = (h ^ (data[whole + 2] << 16)) >>> 0;
    // fall through
    case 2:
      h = (h ^ (data[whole + 1] << 8)) >>> 0;
    // fall through
    case 1:
      h = (h ^ data[whole]) >>> 0;
      h = Math.imul(h, m) >>> 0;
  }
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, m) >>> 0;
  h = (h ^ (h >>> 15)) >>> 0;
  return h;
}

const choose = (bytes, partitionCount) => (murmur2(bytes) & 0x7fffffff) % partitionCount;
const present = (bytes) => bytes !== undefined && bytes !== null;

export const partitioner = {
  partition(topic, partitionCount, records) {
    if (partitionCount === 0) {
      throw { errorCode: INVALID_RECORD, message: "the topic has no partitions" };
    }
    return records.map((r) =>
      present(r.key) ? choose(r.key, partitionCount) : present(r.value) ? choose(r.value, partitionCount) : 0,
    );
  },
};
