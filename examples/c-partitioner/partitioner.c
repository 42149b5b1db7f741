// Kafka's default partitioner for keyed records, as a Strom plugin written in C.
//
// The same choice as the Rust plugin `plugins/murmur2-partitioner`, the Java client and
// librdkafka's `murmur2_random`: toPositive(murmur2(key)) % partitions. A record without a
// key is placed by the murmur2 of its value (partition 0 without one), as the Rust plugin
// does: a choice that depends only on the record, so client and broker agree.
//
// `wit-bindgen c` generates partitioner_plugin.{c,h} from wit/strom-plugin.wit (world
// `partitioner-plugin`); this file implements the one exported function. Ownership follows
// the canonical ABI: the arguments belong to us (we free them), the result list and an
// error message are freed by the generated post-return function.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "partitioner_plugin.h"

#define INVALID_RECORD 87

// Kafka's Utils.murmur2 (seed 0x9747b28c).
static uint32_t murmur2(const uint8_t *data, size_t length) {
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  uint32_t h = 0x9747b28c ^ (uint32_t)length;
  size_t whole = length & ~(size_t)3;
  for (size_t i = 0; i < whole; i += 4) {
    uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 | (uint32_t)data[i + 2] << 16 |
                 (uint32_t)data[i + 3] << 24;
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  switch (length & 3) {
    case 3:
      h ^= (uint32_t)data[whole + 2] << 16;
      // fall through
    case 2:
      h ^= (uint32_t)data[whole + 1] << 8;
      // fall through
    case 1:
      h ^= data[whole];
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return h;
}

static uint32_t choose(const partitioner_plugin_list_u8_t *bytes, uint32_t partition_count) {
  return (murmur2(bytes->ptr, bytes->len) & 0x7fffffff) % partition_count;
}

bool exports_strom_plugin_partitioner_partition(partitioner_plugin_string_t *topic, uint32_t partition_count,
                                                exports_strom_plugin_partitioner_list_kafka_record_t *records,
                                                partitioner_plugin_list_u32_t *ret,
                                                exports_strom_plugin_partitioner_plugin_error_t *err) {
  bool ok = true;
  if (partition_count == 0) {
    err->error_code = INVALID_RECORD;
    partitioner_plugin_string_dup(&err->message, "the topic has no partitions");
    ok = false;
  } else {
    // calloc(0, ...) may answer NULL; ask for at least one element.
    uint32_t *chosen = calloc(records->len ? records->len : 1, sizeof(uint32_t));
    if (!chosen) abort();
    for (size_t i = 0; i < records->len; i++) {
      const strom_plugin_types_kafka_record_t *r = &records->ptr[i];
      if (r->key.is_some) {
        chosen[i] = choose(&r->key.val, partition_count);
      } else if (r->value.is_some) {
        chosen[i] = choose(&r->value.val, partition_count);
      } else {
        chosen[i] = 0;
      }
    }
    ret->ptr = chosen;
    ret->len = records->len;
  }
  partitioner_plugin_string_free(topic);
  exports_strom_plugin_partitioner_list_kafka_record_free(records);
  return ok;
}
