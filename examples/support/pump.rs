//! The copy loop the sealing benchmarks time: 256 KiB reads (what the
//! spool and the SFTP client use), every byte written on, the count kept.

use std::io::{Read, Write};

/// Copies all of `from` into `to` in 256 KiB pieces; the bytes copied.
pub fn pump(from: &mut impl Read, to: &mut impl Write) -> u64 {
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = from.read(&mut buf).unwrap();
        if n == 0 {
            return bytes;
        }
        bytes += n as u64;
        to.write_all(&buf[..n]).unwrap();
    }
}
