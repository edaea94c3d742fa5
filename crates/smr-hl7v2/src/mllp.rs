//! MLLP framing (HL7 v2 Minimal Lower Layer Protocol, release 2): a message is sent as
//! `0x0B` (start block), the message, `0x1C 0x0D` (end block).
//!
//! [`Deframer`] takes bytes as they arrive and gives back whole messages; it does no I/O, so
//! the TCP listener (`smr-server/src/mllp.rs`) and file import share it. Bytes between frames
//! (line ends a sender adds, keep-alive noise) are skipped. A frame longer than the limit is
//! reported once ([`Frame::TooLarge`]) and its bytes are dropped up to its end block, so one
//! oversized message costs its own refusal, never the connection's memory.

pub const START: u8 = 0x0B;
pub const END: u8 = 0x1C;
pub const CR: u8 = 0x0D;

/// `message` framed for sending.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(START);
    out.extend_from_slice(message);
    out.extend_from_slice(&[END, CR]);
    out
}

/// What [`Deframer::next_frame`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole message (without its framing bytes).
    Message(Vec<u8>),
    /// A frame went past the limit; its bytes are being dropped up to its end block.
    TooLarge,
}

/// Reassembles MLLP frames from a byte stream.
#[derive(Debug)]
pub struct Deframer {
    max: usize,
    buf: Vec<u8>,
    /// Inside a frame (a start block was seen).
    in_frame: bool,
    /// Dropping the rest of an oversized frame.
    discarding: bool,
}

impl Deframer {
    /// `max`: the largest message accepted, in bytes.
    pub fn new(max: usize) -> Self {
        Deframer {
            max,
            buf: Vec::new(),
            in_frame: false,
            discarding: false,
        }
    }

    /// Whether a frame has been started but not finished (for "connection closed mid-message").
    pub fn is_mid_frame(&self) -> bool {
        self.in_frame
    }

    /// Adds received bytes; call [`Deframer::next_frame`] until it gives `None`.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if the bytes pushed so far hold one.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if !self.in_frame {
                // Anything before a start block is not part of a message.
                match self.buf.iter().position(|&b| b == START) {
                    Some(i) => {
                        self.buf.drain(..=i);
                        self.in_frame = true;
                    }
                    None => {
                        self.buf.clear();
                        return None;
                    }
                }
            }
            let end = self.buf.windows(2).position(|w| w == [END, CR]);
            match end {
                Some(i) => {
                    let message: Vec<u8> = self.buf.drain(..i + 2).take(i).collect();
                    self.in_frame = false;
                    if std::mem::take(&mut self.discarding) {
                        continue;
                    }
                    if message.len() > self.max {
                        return Some(Frame::TooLarge);
                    }
                    return Some(Frame::Message(message));
                }
                None => {
                    if self.buf.len() > self.max + 1 {
                        // Keep the last byte: it may be the END of an END CR split across reads.
                        let keep = self.buf.split_off(self.buf.len() - 1);
                        self.buf = keep;
                        if !self.discarding {
                            self.discarding = true;
                            return Some(Frame::TooLarge);
                        }
                    }
                    return None;
                }
            }
        }
    }
}

/// Splits a file of messages: MLLP frames when it holds a start block, otherwise messages
/// separated by blank lines or each starting at an `MSH` segment.
pub fn split_file(bytes: &[u8]) -> Vec<Vec<u8>> {
    if bytes.contains(&START) {
        let mut d = Deframer::new(usize::MAX / 2);
        d.push(bytes);
        let mut out = Vec::new();
        while let Some(f) = d.next_frame() {
            if let Frame::Message(m) = f {
                out.push(m);
            }
        }
        return out;
    }
    // CR LF is one line end (else every line would look followed by a blank one).
    let mut text = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        if !(b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
            text.push(b);
        }
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for line in text.split(|&b| b == b'\n' || b == b'\r') {
        let blank = line.iter().all(u8::is_ascii_whitespace);
        if (blank || line.starts_with(b"MSH")) && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        if !blank {
            current.extend_from_slice(line);
            current.push(b'\r');
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_split_across_reads_and_noise_between() {
        let mut d = Deframer::new(100);
        let mut stream = b"\r\n".to_vec();
        stream.extend(frame(b"MSH|one"));
        stream.extend(b"junk");
        stream.extend(frame(b"MSH|two"));
        for chunk in stream.chunks(3) {
            d.push(chunk);
        }
        assert_eq!(d.next_frame(), Some(Frame::Message(b"MSH|one".to_vec())));
        assert_eq!(d.next_frame(), Some(Frame::Message(b"MSH|two".to_vec())));
        assert_eq!(d.next_frame(), None);
    }

    #[test]
    fn an_oversized_frame_is_reported_once_and_dropped() {
        let mut d = Deframer::new(10);
        d.push(&[START]);
        d.push(&[b'x'; 30]);
        assert_eq!(d.next_frame(), Some(Frame::TooLarge));
        d.push(&[b'x'; 30]);
        assert_eq!(d.next_frame(), None);
        d.push(&[END, CR]);
        d.push(&frame(b"MSH|ok"));
        assert_eq!(d.next_frame(), Some(Frame::Message(b"MSH|ok".to_vec())));
    }

    #[test]
    fn files_split_by_blank_lines_msh_or_frames() {
        let text = b"MSH|a\nPID|1\n\nMSH|b\r\nPID|2\nMSH|c\n";
        let parts = split_file(text);
        assert_eq!(
            parts,
            vec![
                b"MSH|a\rPID|1\r".to_vec(),
                b"MSH|b\rPID|2\r".to_vec(),
                b"MSH|c\r".to_vec()
            ]
        );
        let mut framed = frame(b"MSH|a\rPID|1");
        framed.extend(frame(b"MSH|b"));
        assert_eq!(split_file(&framed).len(), 2);
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_messages(
            messages in prop::collection::vec(prop::collection::vec(0x20u8..0x7f, 0..50), 0..5),
            cut in 1usize..20,
        ) {
            let mut stream = Vec::new();
            for m in &messages {
                stream.extend(frame(m));
            }
            let mut d = Deframer::new(1000);
            let mut got = Vec::new();
            for chunk in stream.chunks(cut) {
                d.push(chunk);
                while let Some(Frame::Message(m)) = d.next_frame() {
                    got.push(m);
                }
            }
            prop_assert_eq!(got, messages);
        }

        #[test]
        fn never_panics_and_stays_bounded(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut d = Deframer::new(16);
            for chunk in bytes.chunks(7) {
                d.push(chunk);
                while d.next_frame().is_some() {}
                prop_assert!(d.buf.len() <= 16 + 2 + 7);
            }
        }
    }
}
