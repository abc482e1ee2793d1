//! The SEIPDv1 packet (encrypted data with an MDC: what GnuPG 2.2 and the
//! payers' PGP tools write) opened at GnuPG's speed.
//!
//! rPGP decrypts OpenPGP's CFB one AES block at a time through 8 KiB
//! buffers: every block waits for the one before, so AES-NI runs at a
//! fraction of its speed (0.59× gpg for the whole decrypt). CFB
//! *decryption* has no such chain — each block's keystream is the cipher of
//! the previous *ciphertext* block, all known up front — so here whole
//! 256 KiB pieces go through the `aes` crate's parallel (8 blocks at once)
//! AES-NI path, and the integrity check (SHA-1 over prefix, plaintext and
//! the MDC packet's header, compared with the MDC packet) runs over the
//! same pieces. rPGP still parses everything outside and inside: the
//! session key, the literal, compressed and signature packets, and the
//! signatures; only this symmetric layer is ours, and only for AES (any
//! other cipher goes through rPGP as before).
//!
//! Like rPGP's streaming mode, plaintext is released before the MDC is
//! known — it always holds back the last 22 bytes, which are the MDC
//! packet — and a wrong MDC is an error at the end, which is why
//! [`super::PgpReader::finish`] must pass before anything read is used.

use std::io::{self, BufRead, Read};

use aes::{Aes128, Aes192, Aes256};
use cfb_mode::cipher::{consts::U16, inout::InOutBuf, BlockDecryptMut, KeyIvInit};
use cfb_mode::Decryptor;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use sha1::{Digest, Sha1};

/// The random prefix before the plaintext: a block, then its last two
/// bytes repeated (the "quick check", deliberately not checked: the MDC
/// covers it, and checking it early is an oracle).
const PREFIX: usize = 16 + 2;
/// The MDC packet at the very end: tag 0xD3, length 20, SHA-1.
const MDC_LEN: usize = 22;
const MDC_HEADER: [u8; 2] = [0xD3, 0x14];
/// Ciphertext read and decrypted at once.
const PIECE: usize = 256 * 1024;
const BLOCK: usize = 16;

/// Whether this fast path opens a packet under that cipher.
pub(super) fn takes(alg: SymmetricKeyAlgorithm) -> bool {
    matches!(
        alg,
        SymmetricKeyAlgorithm::AES128
            | SymmetricKeyAlgorithm::AES192
            | SymmetricKeyAlgorithm::AES256
    )
}

/// AES in OpenPGP's CFB mode (zero IV), by key size.
enum Cfb {
    Aes128(Decryptor<Aes128>),
    Aes192(Decryptor<Aes192>),
    Aes256(Decryptor<Aes256>),
}

impl Cfb {
    /// `None` for a cipher this fast path does not take (rPGP opens it).
    fn new(alg: SymmetricKeyAlgorithm, key: &[u8]) -> Option<Self> {
        let iv = [0u8; BLOCK];
        match alg {
            SymmetricKeyAlgorithm::AES128 => {
                Decryptor::new_from_slices(key, &iv).ok().map(Cfb::Aes128)
            }
            SymmetricKeyAlgorithm::AES192 => {
                Decryptor::new_from_slices(key, &iv).ok().map(Cfb::Aes192)
            }
            SymmetricKeyAlgorithm::AES256 => {
                Decryptor::new_from_slices(key, &iv).ok().map(Cfb::Aes256)
            }
            _ => None,
        }
    }

    /// Decrypts whole blocks in place (`data.len()` a multiple of 16; a
    /// shorter rest is left as it is).
    fn blocks(&mut self, data: &mut [u8]) {
        let (blocks, _) = InOutBuf::from(data).into_chunks::<U16>();
        match self {
            Cfb::Aes128(d) => d.decrypt_blocks_inout_mut(blocks),
            Cfb::Aes192(d) => d.decrypt_blocks_inout_mut(blocks),
            Cfb::Aes256(d) => d.decrypt_blocks_inout_mut(blocks),
        }
    }

    /// Decrypts the last, short block: CFB needs no padding, so the block
    /// is completed with zeros and only its own bytes kept.
    fn last(&mut self, data: &mut [u8]) {
        let mut block = [0u8; BLOCK];
        let n = data.len().min(BLOCK);
        if let (Some(dst), Some(src)) = (block.get_mut(..n), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.blocks(&mut block);
        if let (Some(dst), Some(src)) = (data.get_mut(..n), block.get(..n)) {
            dst.copy_from_slice(src);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    /// The MDC matched: what is left in the buffer is all there is.
    Done,
    /// The MDC did not match, or the packet was cut or malformed.
    Failed,
}

/// The plaintext inside a SEIPDv1 packet body (after its version byte), as
/// a `BufRead` rPGP parses the inner message from.
pub(super) struct Seipd1<R> {
    source: R,
    cfb: Cfb,
    mdc: Sha1,
    buf: Vec<u8>,
    /// `buf[start..ready]`: plaintext for the caller, already hashed.
    start: usize,
    ready: usize,
    /// `buf[ready..decrypted]`: decrypted, held back (it may be the MDC).
    decrypted: usize,
    /// `buf[decrypted..end]`: ciphertext short of a whole block.
    end: usize,
    /// Prefix bytes still to skip (hashed, never given out).
    prefix_left: usize,
    state: State,
    /// Whether nothing follows the packet in the file (asked at its end).
    nothing_after: fn(&mut R) -> io::Result<bool>,
}

impl<R> std::fmt::Debug for Seipd1<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Seipd1({:?})", self.state)
    }
}

fn damaged(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

impl<R: BufRead> Seipd1<R> {
    /// `None` when the cipher is not AES (or the key does not fit it).
    /// `nothing_after` is asked once the packet was read whole: data after
    /// it refuses the file as rPGP does.
    pub(super) fn new(
        alg: SymmetricKeyAlgorithm,
        key: &[u8],
        source: R,
        nothing_after: fn(&mut R) -> io::Result<bool>,
    ) -> Option<Self> {
        Some(Seipd1 {
            source,
            cfb: Cfb::new(alg, key)?,
            mdc: Sha1::new(),
            buf: vec![0; PIECE],
            start: 0,
            ready: 0,
            decrypted: 0,
            end: 0,
            prefix_left: PREFIX,
            state: State::Reading,
            nothing_after,
        })
    }

    /// Reads and decrypts the next piece; at the end, checks the MDC.
    fn refill(&mut self) -> io::Result<()> {
        // What is held back (under 22 + 16 bytes) moves to the front.
        self.buf.copy_within(self.ready..self.end, 0);
        self.decrypted -= self.ready;
        self.end -= self.ready;
        self.start = 0;
        self.ready = 0;
        let mut eof = false;
        while let Some(room) = self.buf.get_mut(self.end..).filter(|r| !r.is_empty()) {
            let n = match self.source.read(room) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                eof = true;
                break;
            }
            self.end += n;
        }
        let whole = self.decrypted + (self.end - self.decrypted) / BLOCK * BLOCK;
        if let Some(blocks) = self.buf.get_mut(self.decrypted..whole) {
            self.cfb.blocks(blocks);
        }
        self.decrypted = whole;
        if eof && self.decrypted < self.end {
            if let Some(rest) = self.buf.get_mut(self.decrypted..self.end) {
                self.cfb.last(rest);
            }
            self.decrypted = self.end;
        }
        if eof {
            self.check_mdc()?;
        } else if self.decrypted > self.ready + MDC_LEN {
            let to = self.decrypted - MDC_LEN;
            self.mdc
                .update(self.buf.get(self.ready..to).unwrap_or_default());
            self.ready = to;
        }
        let skip = self.prefix_left.min(self.ready - self.start);
        self.start += skip;
        self.prefix_left -= skip;
        if eof && self.prefix_left > 0 {
            return Err(damaged("the encrypted packet is too short"));
        }
        Ok(())
    }

    /// The last 22 bytes must be an MDC packet whose SHA-1 covers all
    /// before it and its own two header bytes.
    fn check_mdc(&mut self) -> io::Result<()> {
        let Some(body_end) = self
            .decrypted
            .checked_sub(MDC_LEN)
            .filter(|e| *e >= self.ready)
        else {
            return Err(damaged("the encrypted packet is too short"));
        };
        self.mdc
            .update(self.buf.get(self.ready..body_end).unwrap_or_default());
        let packet = self.buf.get(body_end..self.decrypted).unwrap_or_default();
        let (header, hash) = packet.split_at(packet.len().min(2));
        self.mdc.update(header);
        let expected = std::mem::take(&mut self.mdc).finalize();
        // Compared without an early exit, as rPGP does.
        let differs = header
            .iter()
            .chain(hash)
            .zip(MDC_HEADER.iter().chain(expected.iter()))
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differs != 0 || hash.len() != expected.len() {
            return Err(damaged(
                "the integrity check (MDC) failed: the file was damaged or altered",
            ));
        }
        if !(self.nothing_after)(&mut self.source)? {
            return Err(damaged("data follows the encrypted packet"));
        }
        self.ready = body_end;
        self.state = State::Done;
        Ok(())
    }
}

impl<R: BufRead> BufRead for Seipd1<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.start >= self.ready && self.state == State::Reading {
            if let Err(e) = self.refill() {
                self.state = State::Failed;
                return Err(e);
            }
        }
        if self.state == State::Failed {
            return Err(damaged("the encrypted packet was refused"));
        }
        Ok(self.buf.get(self.start..self.ready).unwrap_or_default())
    }

    fn consume(&mut self, amt: usize) {
        self.start = (self.start + amt).min(self.ready);
    }
}

impl<R: BufRead> Read for Seipd1<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let data = self.fill_buf()?;
        let n = data.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfb_mode::cipher::AsyncStreamCipher;
    use cfb_mode::Encryptor;

    /// A SEIPDv1 body (without its version byte) as RFC 9580 builds it.
    fn sealed(key: &[u8; 32], plain: &[u8]) -> Vec<u8> {
        let mut data = vec![7u8; 16];
        data.extend_from_slice(&[7, 7]);
        data.extend_from_slice(plain);
        data.extend_from_slice(&MDC_HEADER);
        let hash = Sha1::digest(&data);
        data.extend_from_slice(&hash);
        Encryptor::<Aes256>::new_from_slices(key, &[0u8; 16])
            .map(|e| e.encrypt(&mut data))
            .ok();
        data
    }

    fn open(key: &[u8; 32], body: Vec<u8>) -> io::Result<Vec<u8>> {
        let mut reader = Seipd1::new(
            SymmetricKeyAlgorithm::AES256,
            key,
            io::Cursor::new(body),
            |_| Ok(true),
        )
        .ok_or_else(|| damaged("no AES"))?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn opens_across_pieces_and_odd_lengths() {
        let key = [3u8; 32];
        for len in [
            0,
            1,
            15,
            16,
            17,
            PIECE - 40,
            PIECE,
            PIECE + 5,
            3 * PIECE + 7,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            assert_eq!(open(&key, sealed(&key, &plain)).ok(), Some(plain), "{len}");
        }
    }

    #[test]
    fn refuses_any_flipped_byte_and_a_cut() {
        let key = [3u8; 32];
        let body = sealed(&key, &[b'x'; 1000]);
        for at in [0, 17, 18, 500, body.len() - 22, body.len() - 1] {
            let mut bad = body.clone();
            bad[at] ^= 1;
            assert!(open(&key, bad).is_err(), "flipped at {at}");
        }
        assert!(open(&key, body[..body.len() - 1].to_vec()).is_err());
        assert!(open(&key, body[..30].to_vec()).is_err());
        assert!(open(&[4u8; 32], body).is_err(), "wrong key");
    }
}
