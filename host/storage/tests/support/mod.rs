// Shared by the storage tests: builds record batches independently of the crate.

/// A valid uncompressed batch of `count` records with values `value-i`.
pub fn batch(count: i32, timestamp: i64, producer: Option<(i64, i16, i32)>) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }
    let mut records = Vec::new();
    for i in 0..count {
        let mut body = vec![0u8];
        varint(&mut body, 0);
        varint(&mut body, i as i64);
        varint(&mut body, -1);
        let value = format!("value-{i}");
        varint(&mut body, value.len() as i64);
        body.extend_from_slice(value.as_bytes());
        varint(&mut body, 0);
        varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&pid.to_be_bytes());
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&records);
    let length = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

pub fn crc32c(data: &[u8]) -> u32 {
    // Bitwise CRC32C, independent of the crate under test.
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
