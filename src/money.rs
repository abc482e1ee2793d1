//! Sums of money that cannot panic.
//!
//! `Decimal`'s `+` and `Sum` panic past 96 bits (about 7.9 × 10²⁸). The
//! 835 reader bounds every amount it takes to what the 5010 TR3 allows
//! (99999999.99), so no sum of a real file's amounts comes near that; but
//! the ledger may hold amounts read before that bound, and a panic in
//! `collect`, `status` or `report` would hide the cause behind "killed or
//! ran out of memory". Every sum of money outside the X12 reader's own
//! balance check goes through here and fails with [`Overflow`] instead.

use rust_decimal::Decimal;

/// A sum of money too large to hold: some amount in it is far past what an
/// 835 may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a sum of amounts is too large to hold (an amount far past 99999999.99)")]
pub struct Overflow;

/// The largest monetary amount (data element 782) a HIPAA 5010
/// transaction carries: ten digits, two of them cents (5010 TR3 front
/// matter B.1.1.3.1.2).
pub fn largest() -> Decimal {
    Decimal::new(9_999_999_999, 2)
}

/// Whether `d` is a monetary amount a 5010 transaction can carry: at most
/// [`largest`] either side of zero, and no fraction of a cent (`10.000` is
/// `10.00`; `10.005` is not an amount).
pub fn dollars_and_cents(d: Decimal) -> bool {
    d.abs() <= largest() && d.normalize().scale() <= 2
}

/// `a + b`, or [`Overflow`].
pub fn add(a: Decimal, b: Decimal) -> Result<Decimal, Overflow> {
    a.checked_add(b).ok_or(Overflow)
}

/// `a − b`, or [`Overflow`].
pub fn sub(a: Decimal, b: Decimal) -> Result<Decimal, Overflow> {
    a.checked_sub(b).ok_or(Overflow)
}

/// `a × b`, or [`Overflow`].
pub fn mul(a: Decimal, b: Decimal) -> Result<Decimal, Overflow> {
    a.checked_mul(b).ok_or(Overflow)
}

/// Adds `b` to `total` in place, or [`Overflow`] (`total` unchanged).
pub fn add_to(total: &mut Decimal, b: Decimal) -> Result<(), Overflow> {
    *total = add(*total, b)?;
    Ok(())
}

/// The sum of `amounts`, or [`Overflow`].
pub fn sum(amounts: impl IntoIterator<Item = Decimal>) -> Result<Decimal, Overflow> {
    amounts.into_iter().try_fold(Decimal::ZERO, add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sum_past_what_a_decimal_holds_is_an_error_not_a_panic() {
        assert_eq!(sum([Decimal::MAX, Decimal::ONE]), Err(Overflow));
        assert_eq!(sum([Decimal::MIN, Decimal::NEGATIVE_ONE]), Err(Overflow));
        assert_eq!(mul(Decimal::MAX, Decimal::TWO), Err(Overflow));
        assert_eq!(
            sum([Decimal::new(1050, 2), Decimal::new(-50, 2)]),
            Ok(Decimal::TEN)
        );
        assert!(dollars_and_cents(Decimal::new(9_999_999_999, 2)));
        assert!(dollars_and_cents(Decimal::new(-10_000, 3)));
        assert!(!dollars_and_cents(Decimal::new(10_005, 3)));
        assert!(!dollars_and_cents(Decimal::new(10_000_000_000, 2)));
        let mut total = Decimal::MAX;
        assert_eq!(add_to(&mut total, Decimal::ONE), Err(Overflow));
        assert_eq!(total, Decimal::MAX);
    }
}
