//! The four X12 delimiters and the check that they can work together.

use std::fmt;

/// Element separator, component separator (ISA16), repetition separator
/// (ISA11) and segment terminator, as single bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub element: u8,
    pub component: u8,
    pub repetition: u8,
    pub segment: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DelimiterError {
    #[error("delimiter {0:?} must be a single ASCII character")]
    NotSingleByte(String),
    #[error("delimiters must all differ, but {0:?} is used twice")]
    Repeated(char),
    #[error("delimiter {0:?} is a letter, digit or space, which occur in data")]
    Alphanumeric(char),
    #[error("the segment terminator must not be CR or LF (a line break may follow it instead)")]
    LineBreakTerminator,
}

impl Delimiters {
    /// `*` `:` `^` `~`, what most partners use.
    pub const STANDARD: Delimiters = Delimiters {
        element: b'*',
        component: b':',
        repetition: b'^',
        segment: b'~',
    };

    /// Delimiters for writing, checked the way partners' companion guides ask.
    pub fn for_writing(
        element: &str,
        component: &str,
        repetition: &str,
        segment: &str,
    ) -> Result<Self, DelimiterError> {
        let one = |s: &str| match s.as_bytes() {
            [b] if b.is_ascii() => Ok(*b),
            _ => Err(DelimiterError::NotSingleByte(s.to_owned())),
        };
        let d = Delimiters {
            element: one(element)?,
            component: one(component)?,
            repetition: one(repetition)?,
            segment: one(segment)?,
        };
        let all = [d.element, d.component, d.repetition, d.segment];
        for (i, b) in all.iter().enumerate() {
            if b.is_ascii_alphanumeric() || *b == b' ' {
                return Err(DelimiterError::Alphanumeric(char::from(*b)));
            }
            if all.iter().skip(i + 1).any(|o| o == b) {
                return Err(DelimiterError::Repeated(char::from(*b)));
            }
        }
        if matches!(d.segment, b'\r' | b'\n') {
            return Err(DelimiterError::LineBreakTerminator);
        }
        Ok(d)
    }

    /// Bytes a data value must not contain: the delimiters themselves and
    /// anything outside printable ASCII. Indexed by byte.
    pub(crate) fn forbidden_table(&self) -> [bool; 256] {
        let mut t = [false; 256];
        for (b, slot) in t.iter_mut().enumerate() {
            *slot = !(0x20..=0x7e).contains(&b);
        }
        for b in [self.element, self.component, self.repetition, self.segment] {
            t[usize::from(b)] = true;
        }
        t
    }
}

impl fmt::Debug for Delimiters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Delimiters(element {:?}, component {:?}, repetition {:?}, segment {:?})",
            char::from(self.element),
            char::from(self.component),
            char::from(self.repetition),
            char::from(self.segment)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_clashing_or_unsafe_delimiters() {
        assert_eq!(
            Delimiters::for_writing("*", "*", "^", "~"),
            Err(DelimiterError::Repeated('*'))
        );
        assert_eq!(
            Delimiters::for_writing("*", "A", "^", "~"),
            Err(DelimiterError::Alphanumeric('A'))
        );
        assert_eq!(
            Delimiters::for_writing("*", ":", "^", "\n"),
            Err(DelimiterError::LineBreakTerminator)
        );
        assert!(matches!(
            Delimiters::for_writing("**", ":", "^", "~"),
            Err(DelimiterError::NotSingleByte(_))
        ));
        assert_eq!(
            Delimiters::for_writing("|", ">", "^", "~"),
            Ok(Delimiters {
                element: b'|',
                component: b'>',
                repetition: b'^',
                segment: b'~'
            })
        );
    }
}
