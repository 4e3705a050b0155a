//! Fuzz target: the frame decoder and the message codec, on both message directions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wbl_proto::{Connection, Request, Response, decode, encode_frame};

/// A read/write stream over fuzz input (writes are discarded).
struct Input<'a>(std::io::Cursor<&'a [u8]>);
impl std::io::Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}
impl std::io::Write for Input<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    // Payload decoding: never panics; what decodes re-encodes to something that decodes equal.
    if let Ok(req) = decode::<Request>(data) {
        let frame = encode_frame(&req).expect("a decoded request re-encodes");
        assert_eq!(decode::<Request>(&frame[4..]).ok(), Some(req));
    }
    if let Ok(resp) = decode::<Response>(data) {
        let frame = encode_frame(&resp).expect("a decoded response re-encodes");
        assert_eq!(decode::<Response>(&frame[4..]).ok(), Some(resp));
    }
    // Framing: a stream of frames ends in a clean EOF or an error, never a panic or a hang.
    let mut conn = Connection::new(Input(std::io::Cursor::new(data)));
    for _ in 0..64 {
        match conn.recv::<Request>() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) if e.is_recoverable() => {}
            Err(_) => break,
        }
    }
});
