//! Write Strom plugins in Rust.
//!
//! A plugin is a crate of type `cdylib` built for `wasm32-wasip2`; the compiler emits a
//! WebAssembly component directly. Implement one trait and export it with its macro:
//!
//! ```ignore
//! use strom_plugin_sdk::partitioner::{self, KafkaRecord, PluginError};
//!
//! struct ByKeyLength;
//!
//! impl partitioner::Guest for ByKeyLength {
//!     fn partition(_topic: String, count: u32, records: Vec<KafkaRecord>) -> Result<Vec<u32>, PluginError> {
//!         Ok(records.iter().map(|r| r.key.as_ref().map_or(0, |k| k.len() as u32) % count).collect())
//!     }
//! }
//!
//! strom_plugin_sdk::export_partitioner!(ByKeyLength);
//! ```
//!
//! Layout: [`bindings`] holds the code generated from `wit/strom-plugin.wit` (one module per
//! world; shared types are generated once); [`partitioner`], [`interceptor`] and [`sasl`]
//! re-export what each kind of plugin needs; [`host`] wraps the broker's imports (logging, config);
//! [`json`] and [`headers`] are small helpers for common record work; [`batch`] is the fast
//! form of a partitioner, which reads records in place from the batch's bytes.

#[doc(hidden)]
pub mod bindings {
    pub mod partitioner {
        wit_bindgen::generate!({
            world: "partitioner-plugin",
            path: "../wit",
            pub_export_macro: true,
            export_macro_name: "export_partitioner",
            default_bindings_module: "strom_plugin_sdk::bindings::partitioner",
        });
    }
    pub mod batch_partitioner {
        wit_bindgen::generate!({
            world: "batch-partitioner-plugin",
            path: "../wit",
            with: {
                "strom:plugin/types@0.1.0": crate::bindings::partitioner::strom::plugin::types,
                "strom:plugin/host@0.1.0": crate::bindings::partitioner::strom::plugin::host,
            },
            pub_export_macro: true,
            export_macro_name: "export_batch_partitioner_world",
            default_bindings_module: "strom_plugin_sdk::bindings::batch_partitioner",
        });
    }
    pub mod batch_interceptor {
        wit_bindgen::generate!({
            world: "batch-interceptor-plugin",
            path: "../wit",
            with: {
                "strom:plugin/types@0.1.0": crate::bindings::partitioner::strom::plugin::types,
                "strom:plugin/host@0.1.0": crate::bindings::partitioner::strom::plugin::host,
            },
            pub_export_macro: true,
            export_macro_name: "export_batch_interceptor_world",
            default_bindings_module: "strom_plugin_sdk::bindings::batch_interceptor",
        });
    }
    pub mod interceptor {
        wit_bindgen::generate!({
            world: "interceptor-plugin",
            path: "../wit",
            with: {
                "strom:plugin/types@0.1.0": crate::bindings::partitioner::strom::plugin::types,
                "strom:plugin/host@0.1.0": crate::bindings::partitioner::strom::plugin::host,
            },
            pub_export_macro: true,
            export_macro_name: "export_interceptor",
            default_bindings_module: "strom_plugin_sdk::bindings::interceptor",
        });
    }
    pub mod sasl {
        wit_bindgen::generate!({
            world: "sasl-plugin",
            path: "../wit",
            with: {
                "strom:plugin/host@0.1.0": crate::bindings::partitioner::strom::plugin::host,
            },
            pub_export_macro: true,
            export_macro_name: "export_sasl_mechanism",
            default_bindings_module: "strom_plugin_sdk::bindings::sasl",
        });
    }
}

pub use bindings::interceptor::export_interceptor;
pub use bindings::partitioner::export_partitioner;
pub use bindings::partitioner::strom::plugin::types::{BatchContext, Header, KafkaRecord, PluginError};
pub use bindings::sasl::export_sasl_mechanism;

/// Partitioners that read records in place from the batch's bytes (the `batch-partitioner`
/// world): the broker copies the batch into the plugin once, instead of lifting every key,
/// value and header into its own allocation. Prefer this form for partitioners; the typed
/// [`partitioner`] form is simpler to read but costs more per record.
///
/// ```ignore
/// use strom_plugin_sdk::batch::{BatchPartitioner, Records};
/// use strom_plugin_sdk::PluginError;
///
/// struct ByKeyLength;
///
/// impl BatchPartitioner for ByKeyLength {
///     fn partition(_topic: &str, count: u32, records: &Records<'_>) -> Result<Vec<u32>, PluginError> {
///         records.iter().map(|r| Ok(r?.key.map_or(0, |k| k.len() as u32) % count)).collect()
///     }
/// }
///
/// strom_plugin_sdk::export_batch_partitioner!(ByKeyLength);
/// ```
pub mod batch {
    use crate::PluginError;

    use crate::bindings::batch_interceptor::exports::strom::plugin::batch_interceptor::{BatchVerdict, EncodedRecords};

    /// What the exported interceptor functions answer.
    #[doc(hidden)]
    pub type __Answer = Result<BatchVerdict, PluginError>;

    #[doc(hidden)]
    pub fn __run_interceptor(
        ctx: crate::BatchContext,
        input: &[u8],
        count: u32,
        run: fn(&crate::BatchContext, &Records<'_>, &mut RecordsWriter) -> Result<Rewrite, PluginError>,
    ) -> __Answer {
        let records = Records::new(input, count);
        // Rewrites are usually about the size of the input: one allocation, no regrowth.
        let mut out = RecordsWriter::with_capacity(input.len() + input.len() / 4 + 64);
        match run(&ctx, &records, &mut out)? {
            Rewrite::Keep => Ok(BatchVerdict::Keep),
            Rewrite::Replace => {
                let (records, count) = out.finish();
                Ok(BatchVerdict::Replace(EncodedRecords { records, count }))
            }
        }
    }

    /// Chooses a partition for each record of a batch.
    pub trait BatchPartitioner {
        /// One partition index below `partition_count` per record, in order.
        fn partition(topic: &str, partition_count: u32, records: &Records<'_>) -> Result<Vec<u32>, PluginError>;
    }

    /// The records of one batch in Kafka's record encoding, decoded lazily.
    pub struct Records<'a> {
        bytes: &'a [u8],
        count: u32,
    }

    /// One record, borrowing from the batch.
    #[derive(Debug, Clone, Copy)]
    pub struct RecordRef<'a> {
        /// The record as encoded, length prefix included.
        raw: &'a [u8],
        pub offset_delta: i32,
        /// Relative to the batch's base timestamp.
        pub timestamp_delta: i64,
        pub key: Option<&'a [u8]>,
        pub value: Option<&'a [u8]>,
        /// The encoded record from its attributes to the end of its value: what a rewrite
        /// that changes only headers copies as it is.
        up_to_headers: &'a [u8],
        headers: &'a [u8],
        header_count: usize,
    }

    impl<'a> Records<'a> {
        pub fn new(bytes: &'a [u8], count: u32) -> Records<'a> {
            Records { bytes, count }
        }

        /// How many records the batch holds.
        pub fn len(&self) -> usize {
            self.count as usize
        }

        pub fn is_empty(&self) -> bool {
            self.count == 0
        }

        /// Each record's key, in order, decoding no more of a record than its key (a
        /// partitioner's loop); a malformed record ends the iteration with an error.
        pub fn keys(&self) -> impl Iterator<Item = Result<Keyed<'a>, PluginError>> + 'a {
            let mut rest = self.bytes;
            (0..self.count).map(move |i| parse_key(&mut rest).ok_or_else(|| malformed(i)))
        }

        /// The records in order; a malformed record ends the iteration with an error.
        pub fn iter(&self) -> impl Iterator<Item = Result<RecordRef<'a>, PluginError>> + 'a {
            let mut rest = self.bytes;
            (0..self.count).map(move |i| parse_record(&mut rest).ok_or_else(|| malformed(i)))
        }
    }

    /// The error that ends an iteration at record `index`.
    #[cold]
    fn malformed(index: u32) -> PluginError {
        PluginError {
            error_code: crate::error_codes::CORRUPT_MESSAGE,
            message: format!("record {index} of the batch is malformed"),
        }
    }

    /// A record's key, with the rest of the record left undecoded: the cheap way through a
    /// batch for code that needs only keys (see [`Records::keys`]).
    #[derive(Debug, Clone, Copy)]
    pub struct Keyed<'a> {
        pub key: Option<&'a [u8]>,
        after_key: &'a [u8],
    }

    impl<'a> Keyed<'a> {
        /// The record's value, decoded now (`None` for a null value).
        pub fn value(&self) -> Option<&'a [u8]> {
            let mut rest = self.after_key;
            bytes_field(&mut rest).flatten()
        }
    }

    impl<'a> RecordRef<'a> {
        /// The headers, in order: (key, value).
        pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
            let mut rest = self.headers;
            (0..self.header_count).map_while(move |_| {
                let key = bytes_field(&mut rest)??;
                let value = bytes_field(&mut rest)?;
                Some((std::str::from_utf8(key).ok()?, value))
            })
        }
    }

    #[inline(always)]
    fn parse_key<'a>(buf: &mut &'a [u8]) -> Option<Keyed<'a>> {
        let length = varint(buf)?;
        if length < 1 || buf.len() < length as usize {
            return None;
        }
        let (body, rest) = buf.split_at(length as usize);
        *buf = rest;
        let mut r = &body[1..];
        varint(&mut r)?; // timestamp delta
        varint(&mut r)?; // offset delta
        let key = bytes_field(&mut r)?;
        Some(Keyed { key, after_key: r })
    }

    #[inline(always)]
    fn parse_record<'a>(buf: &mut &'a [u8]) -> Option<RecordRef<'a>> {
        let start = *buf;
        let length = varint(buf)?;
        if length < 1 || buf.len() < length as usize {
            return None;
        }
        let (body, rest) = buf.split_at(length as usize);
        *buf = rest;
        let raw = &start[..start.len() - rest.len()];
        let mut r = &body[1..];
        let timestamp_delta = varint(&mut r)?;
        let offset_delta = varint(&mut r)? as i32;
        let key = bytes_field(&mut r)?;
        let value = bytes_field(&mut r)?;
        let up_to_headers = &body[..body.len() - r.len()];
        let header_count = varint(&mut r)?.max(0) as usize;
        Some(RecordRef {
            raw,
            offset_delta,
            timestamp_delta,
            key,
            value,
            up_to_headers,
            headers: r,
            header_count,
        })
    }

    /// Changes records on their way in (produce) or out (fetch), batch by batch.
    pub trait BatchInterceptor {
        /// Write the records the batch should hold into `out` and return `Rewrite::Replace`,
        /// or return `Rewrite::Keep` (ignoring `out`) to leave the batch as it is.
        fn on_produce(
            ctx: &crate::BatchContext,
            records: &Records<'_>,
            out: &mut RecordsWriter,
        ) -> Result<Rewrite, PluginError>;

        /// The same for consumers; what is stored does not change. Default: keep.
        fn on_fetch(
            _ctx: &crate::BatchContext,
            _records: &Records<'_>,
            _out: &mut RecordsWriter,
        ) -> Result<Rewrite, PluginError> {
            Ok(Rewrite::Keep)
        }
    }

    /// What a [`BatchInterceptor`] did with a batch.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Rewrite {
        Keep,
        /// The batch holds what was written to the [`RecordsWriter`]; records not written
        /// are dropped (their offsets stay unused).
        Replace,
    }

    /// Builds the records of a rewritten batch. Each written record keeps the offset delta
    /// of the record it replaces; write them in the batch's order.
    #[derive(Debug, Default)]
    pub struct RecordsWriter {
        bytes: Vec<u8>,
        count: u32,
        /// Scratch space for one record's headers, reused from record to record.
        headers: Vec<u8>,
    }

    impl RecordsWriter {
        /// A writer with room for `bytes` bytes of records.
        pub fn with_capacity(bytes: usize) -> RecordsWriter {
            RecordsWriter {
                bytes: Vec::with_capacity(bytes),
                ..RecordsWriter::default()
            }
        }

        /// Keeps `record` exactly as it is.
        pub fn keep(&mut self, record: &RecordRef<'_>) {
            self.bytes.extend_from_slice(record.raw);
            self.count += 1;
        }

        /// Keeps `record` as it is except for header `name`, which it sets to `value` (any
        /// headers of that name are replaced by this one, placed last). The rest of the
        /// record is copied as encoded: the cheap way to stamp every record of a batch.
        pub fn keep_with_header(&mut self, record: &RecordRef<'_>, name: &str, value: Option<&[u8]>) {
            let headers = &mut self.headers;
            headers.clear();
            let mut count = 0i64;
            let mut rest = record.headers;
            for _ in 0..record.header_count {
                let start = rest;
                // The same headers `RecordRef::headers` yields: it stops at a malformed one.
                let Some(Some(key)) = bytes_field(&mut rest) else {
                    break;
                };
                if bytes_field(&mut rest).is_none() || std::str::from_utf8(key).is_err() {
                    break;
                }
                if key != name.as_bytes() {
                    append(headers, &start[..start.len() - rest.len()]);
                    count += 1;
                }
            }
            put_bytes(headers, Some(name.as_bytes()));
            put_bytes(headers, value);
            self.put_with_headers(record, count + 1);
        }

        /// Appends `record` up to its headers as encoded, then `header_count` headers
        /// already encoded in `self.headers`.
        fn put_with_headers(&mut self, record: &RecordRef<'_>, header_count: i64) {
            let out = &mut self.bytes;
            let body_len = record.up_to_headers.len() + varint_len(header_count) + self.headers.len();
            out.reserve(varint_len(body_len as i64) + body_len);
            put_varint(out, body_len as i64);
            append(out, record.up_to_headers);
            put_varint(out, header_count);
            append(out, &self.headers);
            self.count += 1;
        }

        /// Writes `record` with a new key, value and headers (timestamp and offset stay).
        pub fn write<'h>(
            &mut self,
            record: &RecordRef<'_>,
            key: Option<&[u8]>,
            value: Option<&[u8]>,
            headers: impl IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
        ) {
            let headers_bytes = &mut self.headers;
            headers_bytes.clear();
            let mut header_count = 0i64;
            for (k, v) in headers {
                put_bytes(headers_bytes, Some(k.as_bytes()));
                put_bytes(headers_bytes, v);
                header_count += 1;
            }
            if same(key, record.key) && same(value, record.value) {
                // Only the headers change: everything before them is copied as it is.
                self.put_with_headers(record, header_count);
                return;
            }
            let out = &mut self.bytes;
            // The length prefix comes first: size the record, reserve once, then write.
            let body_len = 1
                + varint_len(record.timestamp_delta)
                + varint_len(record.offset_delta as i64)
                + field_len(key)
                + field_len(value)
                + varint_len(header_count)
                + headers_bytes.len();
            out.reserve(varint_len(body_len as i64) + body_len);
            put_varint(out, body_len as i64);
            out.push(0);
            put_varint(out, record.timestamp_delta);
            put_varint(out, record.offset_delta as i64);
            put_bytes(out, key);
            put_bytes(out, value);
            put_varint(out, header_count);
            append(out, headers_bytes);
            self.count += 1;
        }

        #[doc(hidden)]
        pub fn finish(self) -> (Vec<u8>, u32) {
            (self.bytes, self.count)
        }
    }

    #[inline(always)]
    fn put_varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        let mut encoded = [0u8; 10];
        let mut n = 0;
        while z >= 0x80 {
            encoded[n] = (z as u8 & 0x7f) | 0x80;
            z >>= 7;
            n += 1;
        }
        encoded[n] = z as u8;
        append(out, &encoded[..=n]);
    }

    /// `out.extend_from_slice(src)`, without a call for short slices. Compiled to
    /// WebAssembly, a copy of unknown length is a `memory.copy`, which wasmtime runs as a
    /// call into the host: dearer than copying a key, a header or a varint. Copies of up to
    /// 256 bytes (most records up to their headers) are done here with 16-byte moves.
    #[inline(always)]
    fn append(out: &mut Vec<u8>, src: &[u8]) {
        let n = src.len();
        if n > 256 {
            out.extend_from_slice(src);
            return;
        }
        out.reserve(n);
        let len = out.len();
        // SAFETY: `reserve` made room for `n` more bytes after `len`; every read below is
        // within `src` (each starts at or after its first byte and ends at or before its
        // last), every write within `len..len + n`, and `set_len` covers only bytes
        // written. `src` cannot overlap the spare capacity of `out`.
        unsafe {
            let from = src.as_ptr();
            let to = out.as_mut_ptr().add(len);
            if n >= 16 {
                let mut i = 0;
                while i + 16 < n {
                    to.add(i)
                        .cast::<[u64; 2]>()
                        .write_unaligned(from.add(i).cast::<[u64; 2]>().read_unaligned());
                    i += 16;
                }
                // The last 16 bytes, overlapping what the loop copied.
                to.add(n - 16)
                    .cast::<[u64; 2]>()
                    .write_unaligned(from.add(n - 16).cast::<[u64; 2]>().read_unaligned());
            } else if n >= 8 {
                to.cast::<u64>().write_unaligned(from.cast::<u64>().read_unaligned());
                to.add(n - 8)
                    .cast::<u64>()
                    .write_unaligned(from.add(n - 8).cast::<u64>().read_unaligned());
            } else if n >= 4 {
                to.cast::<u32>().write_unaligned(from.cast::<u32>().read_unaligned());
                to.add(n - 4)
                    .cast::<u32>()
                    .write_unaligned(from.add(n - 4).cast::<u32>().read_unaligned());
            } else if n > 0 {
                *to = *from;
                *to.add(n / 2) = *from.add(n / 2);
                *to.add(n - 1) = *from.add(n - 1);
            }
            out.set_len(len + n);
        }
    }

    /// Whether two fields are the very same bytes (not merely equal ones).
    #[inline(always)]
    fn same(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            _ => false,
        }
    }

    #[inline(always)]
    fn varint_len(v: i64) -> usize {
        let z = ((v << 1) ^ (v >> 63)) as u64;
        (64 - (z | 1).leading_zeros() as usize).div_ceil(7)
    }

    /// The encoded size of a bytes field.
    #[inline(always)]
    fn field_len(field: Option<&[u8]>) -> usize {
        match field {
            None => 1,
            Some(b) => varint_len(b.len() as i64) + b.len(),
        }
    }

    #[inline(always)]
    fn put_bytes(out: &mut Vec<u8>, field: Option<&[u8]>) {
        match field {
            None => put_varint(out, -1),
            Some(b) => {
                put_varint(out, b.len() as i64);
                append(out, b);
            }
        }
    }

    #[inline(always)]
    fn varint(buf: &mut &[u8]) -> Option<i64> {
        // Nearly every varint in a record is one or two bytes (lengths up to 8 KiB, offset
        // deltas up to 8191): decode those without the loop.
        let zigzag = |z: u64| ((z >> 1) as i64) ^ -((z & 1) as i64);
        let bytes: &[u8] = buf;
        match bytes {
            [first, rest @ ..] if *first < 0x80 => {
                *buf = rest;
                Some(zigzag(*first as u64))
            }
            [first, second, rest @ ..] if *second < 0x80 => {
                *buf = rest;
                Some(zigzag((*first & 0x7f) as u64 | (*second as u64) << 7))
            }
            _ => {
                let (value, size) = varint_long(bytes)?;
                *buf = &bytes[size..];
                Some(value)
            }
        }
    }

    /// A varint of any size and how many bytes it took. It takes the slice by value: were
    /// its caller's cursor passed by reference to this out-of-line function, the cursor
    /// would have to live in (WebAssembly linear) memory on the fast path too.
    #[inline(never)]
    fn varint_long(bytes: &[u8]) -> Option<(i64, usize)> {
        let mut value: u64 = 0;
        for (i, &byte) in bytes.iter().take(10).enumerate() {
            value |= ((byte & 0x7f) as u64) << (7 * i);
            if byte & 0x80 == 0 {
                return Some((((value >> 1) as i64) ^ -((value & 1) as i64), i + 1));
            }
        }
        None
    }

    /// `Some(None)` is a null field; `None` a malformed one.
    #[inline(always)]
    fn bytes_field<'a>(buf: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
        let len = varint(buf)?;
        if len < 0 {
            return Some(None);
        }
        if buf.len() < len as usize {
            return None;
        }
        let (field, rest) = buf.split_at(len as usize);
        *buf = rest;
        Some(Some(field))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        type Fields<'a> = (
            i64,
            i32,
            Option<&'a [u8]>,
            Option<&'a [u8]>,
            Vec<(&'a str, Option<&'a [u8]>)>,
        );

        /// Kafka's record encoding, written independently of the module's own writer.
        fn encode(records: &[Fields<'_>]) -> Vec<u8> {
            fn varint(out: &mut Vec<u8>, v: i64) {
                let mut z = ((v << 1) ^ (v >> 63)) as u64;
                loop {
                    let byte = (z & 0x7f) as u8;
                    z >>= 7;
                    if z == 0 {
                        out.push(byte);
                        return;
                    }
                    out.push(byte | 0x80);
                }
            }
            fn field(out: &mut Vec<u8>, f: Option<&[u8]>) {
                match f {
                    None => varint(out, -1),
                    Some(b) => {
                        varint(out, b.len() as i64);
                        out.extend_from_slice(b);
                    }
                }
            }
            let mut out = Vec::new();
            for (ts, od, key, value, headers) in records {
                let mut body = vec![0];
                varint(&mut body, *ts);
                varint(&mut body, *od as i64);
                field(&mut body, *key);
                field(&mut body, *value);
                varint(&mut body, headers.len() as i64);
                for (k, v) in headers {
                    field(&mut body, Some(k.as_bytes()));
                    field(&mut body, *v);
                }
                varint(&mut out, body.len() as i64);
                out.extend_from_slice(&body);
            }
            out
        }

        fn sample() -> Vec<Fields<'static>> {
            static LONG: [u8; 20_000] = [7; 20_000];
            vec![
                (0, 0, Some(b"k"), Some(b"v"), vec![]),
                (-5, 63, None, Some(&LONG[..200]), vec![("a", Some(b"1")), ("b", None)]),
                (70_000, 9_000, Some(&LONG[..300]), None, vec![("stamp", Some(b"old"))]),
                (1, 9_001, Some(b""), Some(&LONG), vec![]),
            ]
        }

        fn fields<'a>(r: &RecordRef<'a>) -> Fields<'a> {
            (r.timestamp_delta, r.offset_delta, r.key, r.value, r.headers().collect())
        }

        #[test]
        fn records_read_back_what_was_encoded() {
            let bytes = encode(&sample());
            let records = Records::new(&bytes, 4);
            let read: Vec<Fields<'_>> = records.iter().map(|r| fields(&r.unwrap())).collect();
            assert_eq!(read, sample());
            let keys: Vec<_> = records.keys().map(|k| k.unwrap()).map(|k| (k.key, k.value())).collect();
            let expected: Vec<_> = sample().into_iter().map(|(_, _, k, v, _)| (k, v)).collect();
            assert_eq!(keys, expected);
            assert!(Records::new(&bytes, 5).keys().last().unwrap().is_err());
            // A count past the bytes, or cut bytes, end in an error rather than a misread.
            assert!(Records::new(&bytes, 5).iter().last().unwrap().is_err());
            assert!(Records::new(&bytes[..bytes.len() - 1], 4).iter().any(|r| r.is_err()));
        }

        #[test]
        fn writer_keeps_rewrites_and_restamps_exactly() {
            let bytes = encode(&sample());
            let records: Vec<RecordRef<'_>> = Records::new(&bytes, 4).iter().map(|r| r.unwrap()).collect();
            // keep: byte for byte.
            let mut kept = RecordsWriter::default();
            records.iter().for_each(|r| kept.keep(r));
            assert_eq!(kept.finish(), (bytes.clone(), 4));
            // Only headers change (key and value passed through: the copying path) and the
            // same with copies of key and value (the encoding path): identical bytes.
            fn stamp<'a>(r: &RecordRef<'a>) -> Vec<(&'a str, Option<&'a [u8]>)> {
                let mut headers: Vec<_> = r.headers().filter(|(k, _)| *k != "stamp").collect();
                headers.push(("stamp", Some(b"new".as_slice())));
                headers
            }
            let mut through = RecordsWriter::default();
            let mut copied = RecordsWriter::default();
            for r in &records {
                through.write(r, r.key, r.value, stamp(r));
                let (key, value) = (r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec));
                copied.write(r, key.as_deref(), value.as_deref(), stamp(r));
            }
            let expected: Vec<Fields<'_>> = sample()
                .into_iter()
                .map(|(ts, od, k, v, h)| {
                    let mut h: Vec<_> = h.into_iter().filter(|(k, _)| *k != "stamp").collect();
                    h.push(("stamp", Some(b"new".as_slice())));
                    (ts, od, k, v, h)
                })
                .collect();
            let mut stamped = RecordsWriter::default();
            for r in &records {
                stamped.keep_with_header(r, "stamp", Some(b"new"));
            }
            let (through, n) = through.finish();
            assert_eq!((through.clone(), n), copied.finish());
            assert_eq!((through.clone(), n), stamped.finish());
            assert_eq!(through, encode(&expected));
            // A new value is encoded with its own length.
            let mut changed = RecordsWriter::default();
            changed.write(&records[3], None, Some(b"short"), []);
            let (out, n) = changed.finish();
            assert_eq!(out, encode(&[(1, 9_001, None, Some(b"short"), vec![])]));
            assert_eq!(n, 1);
        }

        #[test]
        fn append_copies_every_length_exactly() {
            let source: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
            for len in 0..=source.len() {
                // From an odd offset, onto a vector already holding a few bytes.
                let src = &source[source.len() - len..];
                let mut out = vec![0xAA; 5];
                append(&mut out, src);
                assert_eq!(&out[..5], &[0xAA; 5], "length {len}: the prefix changed");
                assert_eq!(&out[5..], src, "length {len}");
            }
        }
    }
}

/// Exports a [`batch::BatchPartitioner`] as the plugin's `batch-partitioner` world.
#[macro_export]
macro_rules! export_batch_partitioner {
    ($t:ty) => {
        #[doc(hidden)]
        pub struct __StromBatchPartitionerExport;
        impl $crate::bindings::batch_partitioner::exports::strom::plugin::batch_partitioner::Guest
            for __StromBatchPartitionerExport
        {
            fn partition_batch(
                topic: String,
                partition_count: u32,
                records: Vec<u8>,
                count: u32,
            ) -> Result<Vec<u32>, $crate::PluginError> {
                <$t as $crate::batch::BatchPartitioner>::partition(
                    &topic,
                    partition_count,
                    &$crate::batch::Records::new(&records, count),
                )
            }
        }
        $crate::bindings::batch_partitioner::export_batch_partitioner_world!(__StromBatchPartitionerExport);
    };
}

/// Exports a [`batch::BatchInterceptor`] as the plugin's `batch-interceptor` world.
#[macro_export]
macro_rules! export_batch_interceptor {
    ($t:ty) => {
        #[doc(hidden)]
        pub struct __StromBatchInterceptorExport;
        impl $crate::bindings::batch_interceptor::exports::strom::plugin::batch_interceptor::Guest
            for __StromBatchInterceptorExport
        {
            fn on_produce_batch(ctx: $crate::BatchContext, records: Vec<u8>, count: u32) -> $crate::batch::__Answer {
                $crate::batch::__run_interceptor(
                    ctx,
                    &records,
                    count,
                    <$t as $crate::batch::BatchInterceptor>::on_produce,
                )
            }
            fn on_fetch_batch(ctx: $crate::BatchContext, records: Vec<u8>, count: u32) -> $crate::batch::__Answer {
                $crate::batch::__run_interceptor(
                    ctx,
                    &records,
                    count,
                    <$t as $crate::batch::BatchInterceptor>::on_fetch,
                )
            }
        }
        $crate::bindings::batch_interceptor::export_batch_interceptor_world!(__StromBatchInterceptorExport);
    };
}

/// Kafka error codes a plugin typically refuses with.
pub mod error_codes {
    pub const INVALID_RECORD: i16 = 87;
    pub const POLICY_VIOLATION: i16 = 44;
    pub const CORRUPT_MESSAGE: i16 = 2;
}

impl PluginError {
    pub fn invalid_record(message: impl Into<String>) -> PluginError {
        PluginError {
            error_code: error_codes::INVALID_RECORD,
            message: message.into(),
        }
    }
    pub fn policy_violation(message: impl Into<String>) -> PluginError {
        PluginError {
            error_code: error_codes::POLICY_VIOLATION,
            message: message.into(),
        }
    }
}

/// Everything a partitioner needs: implement [`partitioner::Guest`] and call
/// [`export_partitioner!`](crate::export_partitioner).
pub mod partitioner {
    pub use crate::bindings::partitioner::exports::strom::plugin::partitioner::Guest;
    pub use crate::{BatchContext, Header, KafkaRecord, PluginError};
}

/// Everything a record interceptor needs: implement [`interceptor::Guest`] and call
/// [`export_interceptor!`](crate::export_interceptor).
pub mod interceptor {
    pub use crate::bindings::interceptor::exports::strom::plugin::record_interceptor::{Guest, Verdict};
    pub use crate::{BatchContext, Header, KafkaRecord, PluginError};
}

/// Everything a SASL mechanism needs: implement [`sasl::Guest`] and call
/// [`export_sasl_mechanism!`](crate::export_sasl_mechanism).
///
/// The broker keeps each connection's session state (the bytes `start` and `step` return)
/// and hands it back with the client's next message, so a mechanism keeps nothing in
/// memory between calls:
///
/// ```ignore
/// use strom_plugin_sdk::sasl::{self, Outcome, Principal};
///
/// struct Hello;
///
/// impl sasl::Guest for Hello {
///     fn mechanisms() -> Vec<String> {
///         vec!["X-HELLO".into()]
///     }
///     fn start(_mechanism: String, _client_address: String) -> Vec<u8> {
///         Vec::new()
///     }
///     fn step(_state: Vec<u8>, message: Vec<u8>) -> Result<(Vec<u8>, Outcome), String> {
///         let user = String::from_utf8(message).map_err(|_| "user name is not UTF-8")?;
///         sasl::lookup(&user, "SCRAM-SHA-256").ok_or("authentication failed")?;
///         Ok((Vec::new(), Outcome::Authenticated(Principal::user(&user))))
///     }
/// }
///
/// strom_plugin_sdk::export_sasl_mechanism!(Hello);
/// ```
pub mod sasl {
    pub use crate::bindings::sasl::exports::strom::plugin::sasl_mechanism::{Guest, Outcome, Principal};
    pub use crate::bindings::sasl::strom::plugin::credentials::ScramCredential;

    /// The user's stored SCRAM credential for `mechanism` ("SCRAM-SHA-256" or
    /// "SCRAM-SHA-512"), as the broker keeps it; `None` if the user has none.
    pub fn lookup(user: &str, mechanism: &str) -> Option<ScramCredential> {
        crate::bindings::sasl::strom::plugin::credentials::lookup(user, mechanism)
    }

    impl Principal {
        /// `User:<name>`, with no session lifetime of its own.
        pub fn user(name: &str) -> Principal {
            Principal {
                principal_type: "User".into(),
                name: name.into(),
                session_lifetime_ms: None,
            }
        }
    }
}

/// The broker's imports.
pub mod host {
    use crate::bindings::partitioner::strom::plugin::host as imports;
    pub use imports::Level;

    /// Writes a line to the broker's log, tagged with this plugin's name.
    pub fn log(level: Level, message: &str) {
        imports::log(level, message)
    }

    /// This attachment's setting `plugin.<name>.<key>` from the topic's configs.
    pub fn config(key: &str) -> Option<String> {
        imports::config(key)
    }
}

/// Header helpers.
pub mod headers {
    use crate::{Header, KafkaRecord};

    /// The value of the first header named `key`.
    pub fn get<'a>(record: &'a KafkaRecord, key: &str) -> Option<&'a [u8]> {
        record
            .headers
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| h.value.as_deref())
    }

    /// Sets header `key` (replacing every header of that name).
    pub fn set(record: &mut KafkaRecord, key: &str, value: impl Into<Vec<u8>>) {
        record.headers.retain(|h| h.key != key);
        record.headers.push(Header {
            key: key.to_string(),
            value: Some(value.into()),
        });
    }
}

/// Minimal JSON helpers for the common case of a flat JSON object in a record value:
/// find a top-level field, or blank one out, without pulling a JSON library into every
/// plugin.
pub mod json {
    /// The raw text of top-level field `name` of a JSON object (strings without quotes).
    pub fn field<'a>(value: &'a [u8], name: &str) -> Option<&'a str> {
        let text = std::str::from_utf8(value).ok()?;
        let (start, end) = field_span(text, name)?;
        let raw = &text[start..end];
        Some(raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(raw))
    }

    /// The value with top-level field `name` replaced by the JSON text `replacement`.
    pub fn replace_field(value: &[u8], name: &str, replacement: &str) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(value).ok()?;
        let (start, end) = field_span(text, name)?;
        Some(format!("{}{}{}", &text[..start], replacement, &text[end..]).into_bytes())
    }

    /// Byte span of the value of top-level field `name`.
    fn field_span(text: &str, name: &str) -> Option<(usize, usize)> {
        let bytes = text.as_bytes();
        let mut depth = 0i32;
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                b'"' => {
                    let end = string_end(bytes, i)?;
                    if depth == 1 && &text[i + 1..end] == name {
                        let mut j = end + 1;
                        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                            j += 1;
                        }
                        if bytes.get(j) == Some(&b':') {
                            j += 1;
                            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                                j += 1;
                            }
                            return Some((j, value_end(bytes, j)?));
                        }
                    }
                    i = end;
                }
                _ => {}
            }
            i += 1;
        }
        None
    }

    fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => return Some(i),
                _ => i += 1,
            }
        }
        None
    }

    fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
        match bytes.get(start)? {
            b'"' => Some(string_end(bytes, start)? + 1),
            b'{' | b'[' => {
                let mut depth = 0i32;
                let mut i = start;
                while i < bytes.len() {
                    match bytes[i] {
                        b'"' => i = string_end(bytes, i)?,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(i + 1);
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                None
            }
            _ => {
                let mut i = start;
                while i < bytes.len() && !matches!(bytes[i], b',' | b'}' | b']') && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                Some(i)
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn finds_and_replaces_top_level_fields() {
            let v = br#"{"order":{"customer_id":9},"customer_id": 42, "card":"4111-1111", "tags":["a","b"]}"#;
            assert_eq!(field(v, "customer_id"), Some("42"));
            assert_eq!(field(v, "card"), Some("4111-1111"));
            assert_eq!(field(v, "tags"), Some(r#"["a","b"]"#));
            assert_eq!(field(v, "missing"), None);
            let redacted = replace_field(v, "card", "\"****\"").unwrap();
            assert_eq!(field(&redacted, "card"), Some("****"));
            assert_eq!(field(&redacted, "customer_id"), Some("42"));
        }
    }
}
