//! A compact, unambiguous encoding of any `Serialize` value, for hashing
//! only (a response's fingerprint): never read back, never stored.
//!
//! Every value is tagged and self-delimiting — a string is its length and
//! its bytes, a sequence, tuple, map or struct is opened and closed by a
//! marker, a field skipped by `skip_serializing_if` leaves a marker of its
//! own, enum variants are their name — so two different values of one
//! type never encode alike. Field names are left out (a struct's fields
//! come in their declared order), and strings are copied, not escaped:
//! hashing this costs a fraction of hashing the same value's JSON.

use serde::ser::{self, Serialize};

/// Appends `value`'s encoding to `out`.
pub(super) fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail, and every value is encodable.
    value.serialize(Encoder(out)).ok();
}

/// Never raised: the encoder has no failure of its own; serde asks for a
/// type that can carry one a value's `Serialize` might report.
#[derive(Debug)]
pub(super) struct Never(String);

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Never {}

impl ser::Error for Never {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Never(msg.to_string())
    }
}

struct Encoder<'a>(&'a mut Vec<u8>);

/// `v` in LEB128: seven bits a byte, the high bit set on all but the last.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Encoder<'_> {
    fn tag(&mut self, tag: u8) {
        self.0.push(tag);
    }
    fn len(&mut self, n: usize) {
        varint(self.0, n as u64);
    }
    fn bytes(&mut self, tag: u8, b: &[u8]) {
        self.tag(tag);
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    /// An enum variant, by name (as JSON names it: reordering an enum's
    /// variants changes no fingerprint).
    fn variant(&mut self, tag: u8, name: &str) {
        self.bytes(tag, name.as_bytes());
    }
}

/// Text formatted without allocating; refuses (an error) what does not fit.
struct Short {
    buf: [u8; 64],
    len: usize,
}

impl Short {
    fn new() -> Short {
        Short {
            buf: [0; 64],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are copied in, so this is always UTF-8.
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl std::fmt::Write for Short {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let to = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        to.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A compound value being encoded: closed by `end`'s marker.
struct Compound<'a> {
    out: &'a mut Vec<u8>,
    close: u8,
}

impl Compound<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        value.serialize(Encoder(self.out))
    }
    fn finish(self) -> Result<(), Never> {
        self.out.push(self.close);
        Ok(())
    }
}

impl<'a> ser::Serializer for Encoder<'a> {
    type Ok = ();
    type Error = Never;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(mut self, v: bool) -> Result<(), Never> {
        self.tag(if v { b'T' } else { b'F' });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Never> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), Never> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), Never> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(mut self, v: i64) -> Result<(), Never> {
        self.tag(b'i');
        // Zigzag: small magnitudes, either sign, in few bytes.
        varint(self.0, ((v << 1) ^ (v >> 63)) as u64);
        Ok(())
    }
    fn serialize_i128(mut self, v: i128) -> Result<(), Never> {
        self.tag(b'I');
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Never> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), Never> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), Never> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(mut self, v: u64) -> Result<(), Never> {
        self.tag(b'u');
        varint(self.0, v);
        Ok(())
    }
    fn serialize_u128(mut self, v: u128) -> Result<(), Never> {
        self.tag(b'U');
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Never> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(mut self, v: f64) -> Result<(), Never> {
        self.tag(b'f');
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Never> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(mut self, v: &str) -> Result<(), Never> {
        self.bytes(b's', v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(mut self, v: &[u8]) -> Result<(), Never> {
        self.bytes(b'b', v);
        Ok(())
    }
    fn serialize_none(mut self) -> Result<(), Never> {
        self.tag(b'n');
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(mut self, value: &T) -> Result<(), Never> {
        self.tag(b'y');
        value.serialize(self)
    }
    fn serialize_unit(mut self) -> Result<(), Never> {
        self.tag(b'0');
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Never> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Never> {
        self.variant(b'v', variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Never> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Never> {
        self.variant(b'w', variant);
        value.serialize(self)
    }
    fn serialize_seq(mut self, _len: Option<usize>) -> Result<Compound<'a>, Never> {
        self.tag(b'[');
        Ok(Compound {
            out: self.0,
            close: b']',
        })
    }
    fn serialize_tuple(mut self, _len: usize) -> Result<Compound<'a>, Never> {
        self.tag(b'(');
        Ok(Compound {
            out: self.0,
            close: b')',
        })
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Never> {
        self.serialize_tuple(len)
    }
    fn serialize_tuple_variant(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Never> {
        self.variant(b't', variant);
        self.serialize_tuple(len)
    }
    fn serialize_map(mut self, _len: Option<usize>) -> Result<Compound<'a>, Never> {
        self.tag(b'{');
        Ok(Compound {
            out: self.0,
            close: b'}',
        })
    }
    fn serialize_struct(mut self, _name: &'static str, _len: usize) -> Result<Compound<'a>, Never> {
        self.tag(b'<');
        Ok(Compound {
            out: self.0,
            close: b'>',
        })
    }
    fn serialize_struct_variant(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Never> {
        self.variant(b'x', variant);
        self.serialize_struct("", len)
    }
    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<(), Never> {
        // Formatted on the stack (a date, an amount), then encoded as the
        // same text given to `serialize_str` would be.
        use std::fmt::Write;
        let mut text = Short::new();
        if write!(text, "{value}").is_ok() {
            return self.serialize_str(text.as_str());
        }
        self.serialize_str(&value.to_string())
    }
    fn is_human_readable(&self) -> bool {
        // The same form the JSON fingerprint saw (dates and amounts as text).
        true
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        self.element(value)
    }
    fn end(self) -> Result<(), Never> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        self.element(value)
    }
    fn end(self) -> Result<(), Never> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        self.element(value)
    }
    fn end(self) -> Result<(), Never> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        self.element(value)
    }
    fn end(self) -> Result<(), Never> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Never> {
        self.element(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        self.element(value)
    }
    fn end(self) -> Result<(), Never> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), Never> {
        self.element(value)
    }
    fn skip_field(&mut self, _key: &'static str) -> Result<(), Never> {
        self.out.push(b'_');
        Ok(())
    }
    fn end(self) -> Result<(), Never> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), Never> {
        self.element(value)
    }
    fn skip_field(&mut self, _key: &'static str) -> Result<(), Never> {
        self.out.push(b'_');
        Ok(())
    }
    fn end(self) -> Result<(), Never> {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::encode;

    fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out);
        out
    }

    #[derive(serde::Serialize)]
    struct Two {
        #[serde(skip_serializing_if = "Option::is_none")]
        a: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        b: Option<String>,
    }

    #[test]
    fn values_that_differ_encode_differently() {
        // A skipped field leaves its mark: a value in the first field is
        // not the same value in the second.
        let first = Two {
            a: Some("x".into()),
            b: None,
        };
        let second = Two {
            a: None,
            b: Some("x".into()),
        };
        assert_ne!(enc(&first), enc(&second));
        // Strings carry their length: no split of one text aliases another.
        assert_ne!(enc(&("ab", "c")), enc(&("a", "bc")));
        assert_ne!(enc(&vec![vec![1u8], vec![]]), enc(&vec![vec![], vec![1u8]]));
        assert_ne!(enc(&Some("")), enc(&None::<&str>));
        // Displayed values (dates) are strings like any other.
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        assert_eq!(enc(&day), enc(&"2026-12-06"));
    }
}
