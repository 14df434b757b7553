//! Line reading with a hard length cap, over any buffered async reader.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// What one read of a command line produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, terminator included.
    Complete(Vec<u8>),
    /// The line exceeded the limit; it was read and discarded up to its end.
    TooLong,
    /// The peer closed the connection.
    Eof,
}

/// Reads one line of at most `limit` bytes. Unlike `read_until`, a peer that never sends a
/// newline cannot make the session buffer grow without bound.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::Eof);
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let n = chunk.len();
        if !too_long {
            if line.len() + n > limit {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(n);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete(line)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[tokio::test]
    async fn reads_lines_and_caps_length() {
        let data: &[u8] = b"EHLO x\r\nAAAAAAAAAAAAAAAAAAAA\r\nQUIT\r\n";
        let mut r = BufReader::with_capacity(4, data);
        assert_eq!(
            read_line(&mut r, 10).await.unwrap(),
            Line::Complete(b"EHLO x\r\n".to_vec())
        );
        assert_eq!(read_line(&mut r, 10).await.unwrap(), Line::TooLong);
        assert_eq!(
            read_line(&mut r, 10).await.unwrap(),
            Line::Complete(b"QUIT\r\n".to_vec())
        );
        assert_eq!(read_line(&mut r, 10).await.unwrap(), Line::Eof);
    }
}
