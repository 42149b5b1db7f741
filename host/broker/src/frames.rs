//! Reading Kafka's size-prefixed frames off a connection into one growing buffer, and
//! handing out large frames without copying: such a frame is a slice of what the socket
//! delivered. Reads take whatever the socket holds, up to the current frame plus about one
//! more like it, so one read serves several pipelined requests.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The least a read asks the socket for.
const READ_BYTES_MIN: usize = 64 * 1024;
/// Frames below this size are copied out of the read buffer; larger ones (produce
/// requests, mostly) are handed out as slices of it, where the copy would cost.
const COPIED_FRAME_BYTES_MAX: usize = 4096;

/// Why no frame could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame size {size} is outside 0..={max} (socket.request.max.bytes)")]
    FrameSize { size: i32, max: i64 },
}

pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    max_frame: i64,
    /// The size of the last frame handed out: reads leave room for one more like it.
    last_frame: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max_frame: i64) -> FrameReader<R> {
        FrameReader {
            inner,
            buf: BytesMut::new(),
            max_frame,
            last_frame: 0,
        }
    }

    /// Whether the next frame is already here in full (another request can be served at
    /// once, so responses may wait to be written together).
    pub fn has_complete_frame(&self) -> bool {
        matches!(self.next_size(), Ok(Some(size)) if self.buf.len() >= 4 + size)
    }

    /// The next frame if it is here in full, without reading.
    fn complete_frame(&mut self) -> Result<Option<Bytes>, ReadError> {
        let Some(size) = self.next_size()? else {
            return Ok(None);
        };
        if self.buf.len() < 4 + size {
            return Ok(None);
        }
        self.buf.advance(4);
        self.last_frame = size;
        if size < COPIED_FRAME_BYTES_MAX {
            // A small request's fields may be kept for long (a group member's metadata):
            // its own allocation does not hold on to the shared read buffer.
            let frame = Bytes::copy_from_slice(&self.buf[..size]);
            self.buf.advance(size);
            return Ok(Some(frame));
        }
        Ok(Some(self.buf.split_to(size).freeze()))
    }

    /// The next frame; `None` when the peer closed the connection between frames.
    /// Cancel-safe: what was read stays buffered for the next call.
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>, ReadError> {
        loop {
            if let Some(frame) = self.complete_frame()? {
                return Ok(Some(frame));
            }
            let missing = match self.next_size()? {
                Some(size) => 4 + size - self.buf.len(),
                None => 4 - self.buf.len(),
            };
            if self.buf.is_empty() && self.buf.capacity() > 4 * READ_BYTES_MIN {
                // An idle connection does not keep a large request's buffer.
                self.buf = BytesMut::new();
            }
            self.buf.reserve(missing + READ_BYTES_MIN.max(self.last_frame));
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into())
                };
            }
        }
    }

    /// The size prefix of the next frame, once its 4 bytes are here.
    fn next_size(&self) -> Result<Option<usize>, ReadError> {
        let Some(prefix) = self.buf.get(..4) else {
            return Ok(None);
        };
        let size = i32::from_be_bytes(prefix.try_into().expect("4 bytes"));
        if size < 0 || size as i64 > self.max_frame {
            return Err(ReadError::FrameSize {
                size,
                max: self.max_frame,
            });
        }
        Ok(Some(size as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            out.extend_from_slice(&(p.len() as i32).to_be_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    #[tokio::test]
    async fn frames_come_out_whole_and_in_order_however_the_bytes_arrive() {
        let big = vec![7u8; 300_000];
        let medium = vec![3u8; 5_000];
        let bytes = framed(&[b"one", b"", &big, &medium, b"last"]);
        // The bytes arrive in small, uneven pieces.
        let (mut tx, rx) = tokio::io::duplex(1000);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for chunk in bytes.chunks(777) {
                tx.write_all(chunk).await.unwrap();
            }
        });
        let mut reader = FrameReader::new(rx, 1 << 20);
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), &b"one"[..]);
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), &b""[..]);
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), &big[..]);
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), &medium[..]);
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), &b"last"[..]);
        writer.await.unwrap();
        assert!(
            reader.next_frame().await.unwrap().is_none(),
            "a clean close between frames"
        );
    }

    #[tokio::test]
    async fn complete_frame_only_hands_out_what_is_here() {
        let bytes = framed(&[b"first", b"second"]);
        let (left, right) = bytes.split_at(bytes.len() - 2);
        let mut reader = FrameReader::new(left, 1 << 20);
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), &b"first"[..]);
        assert!(reader.complete_frame().unwrap().is_none(), "the second is cut short");
        assert!(!reader.has_complete_frame());
        let mut rest = FrameReader::new(right, 1 << 20);
        assert!(rest.next_frame().await.is_err(), "two bytes are not a frame");
    }

    #[tokio::test]
    async fn bad_sizes_and_cut_frames_are_errors() {
        let (minus_one, two_million) = ((-1i32).to_be_bytes(), 2_000_000i32.to_be_bytes());
        let mut negative = FrameReader::new(&minus_one[..], 1 << 20);
        assert!(matches!(
            negative.next_frame().await,
            Err(ReadError::FrameSize { size: -1, .. })
        ));
        let mut huge = FrameReader::new(&two_million[..], 1 << 20);
        assert!(matches!(huge.next_frame().await, Err(ReadError::FrameSize { .. })));
        let cut = framed(&[b"abcdef"]);
        let mut reader = FrameReader::new(&cut[..cut.len() - 1], 1 << 20);
        assert!(matches!(reader.next_frame().await, Err(ReadError::Io(_))));
    }
}
