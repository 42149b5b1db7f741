//! Kafka's default partitioner for keyed records, as a Strom plugin written in Zig.
//!
//! The same choice as the Rust plugin `plugins/murmur2-partitioner`, the Java client and
//! librdkafka's `murmur2_random`: toPositive(murmur2(key)) % partitions. A record without a
//! key is placed by the murmur2 of its value (partition 0 without one), as the Rust plugin
//! does: a choice that depends only on the record, so client and broker agree.
//!
//! The canonical-ABI glue is `wit-bindgen c`'s (world `partitioner-plugin`), compiled by
//! `zig cc`; `zig translate-c` turns its header into the module `wit` imported here, and this
//! file exports the one function the glue calls. Ownership follows the canonical ABI: the
//! arguments belong to us (we free them), the result list and an error message are freed by
//! the glue's post-return function, so both come from C's malloc.

const std = @import("std");
const wit = @import("wit");

/// A panic traps: no stack traces, so the module makes no WASI calls and needs no adapter.
pub const panic = std.debug.no_panic;

const INVALID_RECORD: i16 = 87;

/// Kafka's `Utils.murmur2` (seed 0x9747b28c).
fn murmur2(data: []const u8) u32 {
    const m: u32 = 0x5bd1e995;
    var h: u32 = 0x9747b28c ^ @as(u32, @truncate(data.len));
    const whole = data.len & ~@as(usize, 3);
    var i: usize = 0;
    while (i < whole) : (i += 4) {
        var k = std.mem.readInt(u32, data[i..][0..4], .little);
        k *%= m;
        k ^= k >> 24;
        k *%= m;
        h *%= m;
        h ^= k;
    }
    const rest = data[whole..];
    if (rest.len >= 3) h ^= @as(u32, rest[2]) << 16;
    if (rest.len >= 2) h ^= @as(u32, rest[1]) << 8;
    if (rest.len >= 1) {
        h ^= rest[0];
        h *%= m;
    }
    h ^= h >> 13;
    h *%= m;
    h ^= h >> 15;
    return h;
}

fn choose(bytes: wit.partitioner_plugin_list_u8_t, partition_count: u32) u32 {
    const data: []const u8 = if (bytes.len == 0) &.{} else bytes.ptr[0..bytes.len];
    return (murmur2(data) & 0x7fffffff) % partition_count;
}

export fn exports_strom_plugin_partitioner_partition(
    topic: *wit.partitioner_plugin_string_t,
    partition_count: u32,
    records: *wit.exports_strom_plugin_partitioner_list_kafka_record_t,
    ret: *wit.partitioner_plugin_list_u32_t,
    err: *wit.exports_strom_plugin_partitioner_plugin_error_t,
) bool {
    defer wit.partitioner_plugin_string_free(topic);
    defer wit.exports_strom_plugin_partitioner_list_kafka_record_free(records);
    if (partition_count == 0) {
        err.error_code = INVALID_RECORD;
        wit.partitioner_plugin_string_dup(&err.message, "the topic has no partitions");
        return false;
    }
    const n = records.len;
    const raw = std.c.malloc(@max(n, 1) * @sizeOf(u32)) orelse @panic("out of memory");
    const chosen: [*]u32 = @ptrCast(@alignCast(raw));
    for (records.ptr[0..n], 0..) |r, i| {
        chosen[i] = if (r.key.is_some)
            choose(r.key.val, partition_count)
        else if (r.value.is_some)
            choose(r.value.val, partition_count)
        else
            0;
    }
    ret.ptr = chosen;
    ret.len = n;
    return true;
}
