//! A bounded record of what the function process printed, kept for debugging: a crash is
//! easier to read with the panic message beside it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Which of the process's streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// A line the emulator adds itself (a process start, an exit).
    Emulator,
}

/// One line of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: Stream,
    pub text: String,
}

/// The last `capacity` lines, each cut to `MAX_LINE` bytes.
#[derive(Debug, Clone)]
pub struct LogBuffer {
    inner: Arc<Mutex<VecDeque<LogLine>>>,
    capacity: usize,
}

/// A line longer than this is cut; a process that never prints a newline cannot grow the
/// buffer without bound.
pub const MAX_LINE: usize = 8 * 1024;

impl LogBuffer {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(VecDeque::with_capacity(capacity.min(1024)))),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&self, stream: Stream, text: String) {
        // A poisoned lock only means another writer panicked mid-push; the lines are still
        // plain data, so keep using them.
        let mut lines = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while lines.len() >= self.capacity {
            lines.pop_front();
        }
        lines.push_back(LogLine { stream, text });
    }

    /// A copy of the buffered lines, oldest first.
    pub fn lines(&self) -> Vec<LogLine> {
        let lines = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect()
    }

    /// The buffered lines as one text, each prefixed with its stream.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in self.lines() {
            let tag = match line.stream {
                Stream::Stdout => "out",
                Stream::Stderr => "err",
                Stream::Emulator => "emu",
            };
            out.push_str(tag);
            out.push_str(" | ");
            out.push_str(&line.text);
            out.push('\n');
        }
        out
    }

    /// Copy `reader` into the buffer line by line until EOF or a read error.
    pub(crate) async fn capture<R: AsyncRead + Unpin>(self, stream: Stream, mut reader: R) {
        let mut chunk = [0u8; 4096];
        let mut line: Vec<u8> = Vec::new();
        loop {
            let n = match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &b in &chunk[..n] {
                if b == b'\n' {
                    self.push(stream, String::from_utf8_lossy(&line).into_owned());
                    line.clear();
                } else if line.len() < MAX_LINE {
                    line.push(b);
                }
            }
        }
        if !line.is_empty() {
            self.push(stream, String::from_utf8_lossy(&line).into_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_keeps_only_the_newest_lines() {
        let buf = LogBuffer::new(3);
        for i in 0..5 {
            buf.push(Stream::Stdout, format!("line {i}"));
        }
        let texts: Vec<_> = buf.lines().into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["line 2", "line 3", "line 4"]);
    }

    #[tokio::test]
    async fn capture_splits_lines_and_cuts_long_ones() {
        let buf = LogBuffer::new(10);
        let mut input = b"first\nsecond\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 100));
        input.extend(b"\nlast");
        buf.clone().capture(Stream::Stderr, &input[..]).await;
        let lines = buf.lines();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].text, "first");
        assert_eq!(lines[1].text, "second");
        assert_eq!(lines[2].text.len(), MAX_LINE);
        assert_eq!(lines[3].text, "last");
        assert!(lines.iter().all(|l| l.stream == Stream::Stderr));
    }
}
