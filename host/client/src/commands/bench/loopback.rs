//! `strom bench loopback`: the machine's raw TCP throughput, to put the broker numbers in
//! proportion.
//!
//! A listener on 127.0.0.1:0 and a client in this process stream `--bytes` bytes one way in
//! `--chunk`-sized writes. Both ends are plain blocking sockets on their own threads, so the
//! number is the kernel's loopback limit and not any runtime's.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::report::{per_sec, print_json, print_line, random_bytes, round3, MB};

/// `strom bench loopback`: raw TCP throughput over loopback.
#[derive(Debug, clap::Args)]
pub struct LoopbackBench {
    /// Bytes to stream.
    #[arg(long, default_value_t = 4_294_967_296)]
    pub bytes: u64,
    /// Bytes per write (and per read).
    #[arg(long, default_value_t = 1_048_576, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk: u64,
}

impl LoopbackBench {
    pub(super) async fn run(self) -> Result<()> {
        let (total, chunk) = (self.bytes, self.chunk as usize);
        let (received, elapsed) = tokio::task::spawn_blocking(move || stream(total, chunk))
            .await
            .context("the loopback benchmark panicked")??;
        if received != total {
            bail!("received {received} of {total} bytes");
        }
        let mb_per_sec = per_sec(received as f64 / MB, elapsed);
        print_line(&format!(
            "Streamed {:.2} MB over loopback in {:.3} s: {mb_per_sec:.2} MB/sec ({:.2} Gbit/s).",
            received as f64 / MB,
            elapsed.as_secs_f64(),
            per_sec(received as f64 * 8.0 / 1e9, elapsed)
        ));
        print_json(json!({
            "bench": "loopback",
            "bytes": received,
            "chunk": chunk,
            "elapsed_s": round3(elapsed.as_secs_f64()),
            "mb_per_sec": round3(mb_per_sec),
        }));
        Ok(())
    }
}

/// Streams `total` bytes from a writer thread to a reader thread; returns what the reader got
/// and the time from the first write to the reader's end of stream.
fn stream(total: u64, chunk: usize) -> Result<(u64, std::time::Duration)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot listen on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> Result<(u64, Instant)> {
        let (mut socket, _) = listener.accept().context("accept failed")?;
        let mut buf = vec![0u8; chunk];
        let mut received = 0u64;
        loop {
            let n = socket.read(&mut buf).context("read failed")?;
            if n == 0 {
                return Ok((received, Instant::now()));
            }
            received += n as u64;
        }
    });
    let mut socket = TcpStream::connect(addr).context("cannot connect over loopback")?;
    socket.set_nodelay(true).ok();
    // Random bytes, although nothing on loopback compresses: the same payload as elsewhere.
    let payload = random_bytes(chunk, 0x100b);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let n = ((total - sent) as usize).min(chunk);
        socket.write_all(&payload[..n]).context("write failed")?;
        sent += n as u64;
    }
    socket.shutdown(Shutdown::Write).context("shutdown failed")?;
    let (received, end) = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))??;
    Ok((received, end - start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_every_byte() {
        let (received, elapsed) = stream(10 << 20, 64 << 10).unwrap();
        assert_eq!(received, 10 << 20);
        assert!(elapsed.as_nanos() > 0);
    }
}
