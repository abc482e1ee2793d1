//! Where SQLite and PostgreSQL spell the same ledger operation differently.
//!
//! Every ledger query is one text for both engines (`$1…` placeholders,
//! `ON CONFLICT … RETURNING`, stamps and money as text); only the few
//! fragments here differ: JSON arrays handed in as one parameter and
//! aggregated back out, day arithmetic, string aggregation, the schema of
//! temporary tables. Keeping them in one place keeps the logic single.

use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, Encode, Transaction, Type};

use super::{query_err, LedgerError};

/// The engine behind a ledger URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The engine a ledger URL names (`sqlite:…`, `postgres://…` or
    /// `postgresql://…`); None for any other scheme.
    pub fn of(url: &str) -> Option<Dialect> {
        if url.starts_with("sqlite:") {
            Some(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Dialect::Postgres)
        } else {
            None
        }
    }

    /// Its name for people (`check`).
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
        }
    }

    /// A subquery: the string elements of the JSON array in `param`.
    pub(super) fn json_texts(self, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each({param})"),
            Dialect::Postgres => {
                format!("SELECT jsonb_array_elements_text(CAST({param} AS jsonb))")
            }
        }
    }

    /// A subquery: the integer elements of the JSON array in `param`.
    pub(super) fn json_ids(self, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each({param})"),
            Dialect::Postgres => {
                format!("SELECT CAST(jsonb_array_elements_text(CAST({param} AS jsonb)) AS BIGINT)")
            }
        }
    }

    /// An aggregate: a JSON array of one JSON array (of `items`) per row,
    /// in no particular order (sorting costs the engine more than the
    /// caller); `[]` for no rows.
    pub(super) fn json_agg_any_order(self, items: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_group_array(json_array({items}))"),
            Dialect::Postgres => {
                format!("COALESCE(jsonb_agg(jsonb_build_array({items})), '[]'::jsonb)")
            }
        }
    }

    /// An aggregate: a JSON array of one JSON array (of `items`) per row,
    /// in `order`; `[]` for no rows. A JSON value, to nest in another.
    pub(super) fn json_agg(self, items: &str, order: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_group_array(json_array({items}) ORDER BY {order})"),
            Dialect::Postgres => format!(
                "COALESCE(jsonb_agg(jsonb_build_array({items}) ORDER BY {order}), '[]'::jsonb)"
            ),
        }
    }

    /// A JSON value (`json_agg`) as text, to read out of a query.
    pub(super) fn json_text(self, json: &str) -> String {
        match self {
            Dialect::Sqlite => json.to_owned(),
            Dialect::Postgres => format!("CAST({json} AS TEXT)"),
        }
    }

    /// A scalar subquery yielding JSON, as a JSON value inside `json_array`.
    pub(super) fn json_sub(self, subquery: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json(({subquery}))"),
            Dialect::Postgres => format!("({subquery})"),
        }
    }

    /// The string elements of the JSON array in column `expr`, joined as
    /// table `alias` with a text column `value`: the FROM item, and the
    /// condition (with its leading AND, or nothing) that keeps strings only.
    pub(super) fn json_strings_of(self, expr: &str, alias: &str) -> (String, String) {
        match self {
            Dialect::Sqlite => (
                format!("json_each({expr}) {alias}"),
                format!("AND {alias}.type = 'text'"),
            ),
            Dialect::Postgres => (
                format!(
                    "LATERAL (SELECT e #>> '{{}}' AS value FROM jsonb_array_elements(CAST({expr} AS jsonb)) e \
                     WHERE jsonb_typeof(e) = 'string') {alias}"
                ),
                String::new(),
            ),
        }
    }

    /// Days (with fraction) from stamp `earlier` to stamp `later`.
    pub(super) fn days_between(self, later: &str, earlier: &str) -> String {
        match self {
            Dialect::Sqlite => format!("(julianday({later}) - julianday({earlier}))"),
            Dialect::Postgres => format!(
                "(EXTRACT(EPOCH FROM (CAST({later} AS timestamptz) - CAST({earlier} AS timestamptz))) / 86400.0)"
            ),
        }
    }

    /// Whole days from `earlier` to `later`, never below 0.
    pub(super) fn whole_days_since(self, later: &str, earlier: &str) -> String {
        let days = self.days_between(later, earlier);
        match self {
            Dialect::Sqlite => format!("MAX(0, CAST({days} AS INTEGER))"),
            Dialect::Postgres => format!("GREATEST(0, CAST(FLOOR({days}) AS BIGINT))"),
        }
    }

    /// The Monday (UTC) of the week of a ledger stamp, as `YYYY-MM-DD`.
    pub(super) fn week_of(self, stamp: &str) -> String {
        match self {
            Dialect::Sqlite => format!("date({stamp}, 'weekday 0', '-6 days')"),
            Dialect::Postgres => format!(
                "to_char(date_trunc('week', CAST({stamp} AS timestamptz) AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"
            ),
        }
    }

    /// The database's own clock, now, as a ledger stamp (UTC, to the
    /// second): what leases are judged by, so daemons on hosts whose clocks
    /// disagree still agree on whether a lease has lapsed.
    pub(super) fn db_now(self) -> &'static str {
        match self {
            Dialect::Sqlite => "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            Dialect::Postgres => {
                "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            }
        }
    }

    /// The database's clock `secs` (a parameter: whole seconds) from now,
    /// as a ledger stamp: when a lease taken now lapses.
    pub(super) fn db_now_plus(self, secs: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+' || {secs} || ' seconds')")
            }
            Dialect::Postgres => format!(
                "to_char(clock_timestamp() AT TIME ZONE 'UTC' + CAST({secs} AS DOUBLE PRECISION) * INTERVAL '1 second', \
                 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            ),
        }
    }

    /// What a writing transaction runs first to be the one writer (SQLite
    /// has one write lock per file already).
    pub(super) fn write_lock(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            // "EDIC": one key for the whole ledger, released at the commit.
            Dialect::Postgres => Some("SELECT pg_advisory_xact_lock(1162102083)"),
        }
    }

    /// The schema of this connection's temporary tables.
    pub(super) fn temp(self) -> &'static str {
        match self {
            Dialect::Sqlite => "temp",
            Dialect::Postgres => "pg_temp",
        }
    }
}

/// A ledger URL as the config holds it: used whole (it derefs to the
/// URL), shown only redacted (Display and Debug hide the password).
#[derive(Clone, PartialEq, Eq)]
pub struct LedgerUrl(String);

impl LedgerUrl {
    pub fn new(url: String) -> LedgerUrl {
        LedgerUrl(url)
    }

    /// The file an SQLite ledger lives in (None for PostgreSQL or an
    /// in-memory SQLite): `check` says when it is not made yet rather than
    /// make it.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        let rest = self.0.strip_prefix("sqlite://")?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && !path.starts_with(':')).then(|| path.into())
    }
}

impl std::ops::Deref for LedgerUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LedgerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redacted(&self.0))
    }
}

impl std::fmt::Debug for LedgerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LedgerUrl({:?})", redacted(&self.0))
    }
}

/// A ledger URL fit to show: the password (if any) replaced by `***`,
/// whether it is given as `user:password@` or as a `password=` parameter.
pub fn redacted(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut shown = redact_credentials(head);
    if let Some(query) = query {
        shown.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => param.to_owned(),
            })
            .collect();
        shown.push_str(&params.join("&"));
    }
    shown
}

/// `scheme://user:password@host/…` with the password replaced by `***`.
fn redact_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // user:password@host… — the credentials end at the last `@` before
    // the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let creds = &authority[..at];
            let user = creds.split_once(':').map_or(creds, |(u, _)| u);
            let shown = if creds.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{shown}{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

/// A multi-row `INSERT … VALUES` with each engine's placeholders: `$n` for
/// PostgreSQL (sqlx's query builder writes `?` for the `Any` driver, which
/// PostgreSQL does not read), `?` for SQLite (where `$n` costs a lookup
/// per parameter that grows with their number).
pub(super) struct Values<'q> {
    dialect: Dialect,
    sql: String,
    args: AnyArguments<'q>,
    bound: usize,
    rows: usize,
    failed: Option<sqlx::error::BoxDynError>,
}

/// One row of a [`Values`] being written.
pub(super) struct ValuesRow<'v, 'q> {
    values: &'v mut Values<'q>,
    first: bool,
}

impl<'q> Values<'q> {
    /// `head` is `INSERT INTO table (columns…)`.
    pub fn new(dialect: Dialect, head: &str) -> Values<'q> {
        let mut values = Values::statement(dialect);
        values.sql(&format!("{head} VALUES "));
        values
    }

    /// A statement that is not an `INSERT … VALUES` alone: its text is
    /// written with [`Values::sql`] (`… VALUES ` before the rows), values
    /// every row shares bound first with [`Values::constant`], and the
    /// rows placed with [`Values::rows`] where the text has got to.
    pub fn statement(dialect: Dialect) -> Values<'q> {
        Values {
            dialect,
            sql: String::new(),
            args: AnyArguments::default(),
            bound: 0,
            rows: 0,
            failed: None,
        }
    }

    /// Appends text to the statement.
    pub fn sql(&mut self, text: &str) {
        self.sql.push_str(text);
    }

    /// Binds a value every row shares (bound once, not per row); returns
    /// its placeholder, to be written into the text before the rows (SQLite
    /// numbers `?` in the order they appear). Only before any row.
    pub fn constant<T>(&mut self, value: T) -> String
    where
        T: 'q + Encode<'q, Any> + Type<Any>,
    {
        if self.rows > 0 {
            self.failed
                .get_or_insert_with(|| "a constant bound after the rows".into());
        }
        self.bound += 1;
        if let Err(e) = self.args.add(value) {
            self.failed.get_or_insert(e);
        }
        match self.dialect {
            Dialect::Sqlite => "?".to_owned(),
            Dialect::Postgres => format!("${}", self.bound),
        }
    }

    /// Adds one row per item, its values bound by `f`.
    pub fn rows<I>(
        &mut self,
        items: impl IntoIterator<Item = I>,
        mut f: impl FnMut(ValuesRow<'_, 'q>, I),
    ) {
        for item in items {
            if self.rows > 0 {
                self.sql.push_str(", ");
            }
            self.sql.push('(');
            self.rows += 1;
            f(
                ValuesRow {
                    values: self,
                    first: true,
                },
                item,
            );
            self.sql.push(')');
        }
    }

    /// Runs the statement in `tx`; `what` names it in an error.
    pub async fn execute(
        self,
        tx: &mut Transaction<'_, Any>,
        what: &'static str,
    ) -> Result<(), LedgerError> {
        let (sql, args) = self.finish().map_err(query_err(what))?;
        sqlx::query_with(&sql, args)
            .execute(&mut **tx)
            .await
            .map_err(query_err(what))?;
        Ok(())
    }

    /// The statement, and its arguments (or why one could not be bound).
    pub fn finish(self) -> Result<(String, AnyArguments<'q>), sqlx::Error> {
        match self.failed {
            Some(e) => Err(sqlx::Error::Encode(e)),
            None => Ok((self.sql, self.args)),
        }
    }
}

/// `text` as an SQL string literal, when it is made only of characters
/// that read the same on both engines inside quotes (letters, digits,
/// space and `_ - : . +`): then a value every row shares need not be bound
/// per row. None for anything else, which is bound as before.
pub(super) fn plain_literal(text: &str) -> Option<String> {
    text.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-' | ':' | '.' | '+'))
        .then(|| format!("'{text}'"))
}

impl<'q> ValuesRow<'_, 'q> {
    /// Writes `sql` (a literal the caller made safe: digits, or
    /// [`plain_literal`]'s) in the row instead of a bound value.
    pub fn literal(mut self, sql: &str) -> Self {
        let v = &mut *self.values;
        if !self.first {
            v.sql.push_str(", ");
        }
        self.first = false;
        v.sql.push_str(sql);
        self
    }

    /// A text every row shares: written as a literal when
    /// [`plain_literal`] made one of it, else bound.
    pub fn shared_text(self, literal: Option<&str>, value: &'q str) -> Self {
        match literal {
            Some(sql) => self.literal(sql),
            None => self.bind(value),
        }
    }

    pub fn bind<T>(mut self, value: T) -> Self
    where
        T: 'q + Encode<'q, Any> + Type<Any>,
    {
        let v = &mut *self.values;
        if !self.first {
            v.sql.push_str(", ");
        }
        self.first = false;
        v.bound += 1;
        match v.dialect {
            // Anonymous, in order: SQLite looks a numbered parameter's name
            // up in a list per parameter bound, which made a statement of
            // thousands of values quadratic (82 % of recording claims).
            Dialect::Sqlite => v.sql.push('?'),
            Dialect::Postgres => {
                v.sql.push('$');
                v.sql.push_str(&v.bound.to_string());
            }
        }
        if let Err(e) = v.args.add(value) {
            v.failed.get_or_insert(e);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_never_shown() {
        assert_eq!(
            redacted("postgres://courier:s3cr%40t@db.example:5432/ledger?sslmode=verify-full"),
            "postgres://courier:***@db.example:5432/ledger?sslmode=verify-full"
        );
        assert_eq!(
            redacted("postgres://courier@db/ledger"),
            "postgres://courier@db/ledger"
        );
        assert_eq!(
            redacted("postgres://db/ledger?user=courier&Password=s3cr3t&sslmode=require"),
            "postgres://db/ledger?user=courier&Password=***&sslmode=require"
        );
        assert_eq!(
            redacted("sqlite:///var/lib/edi-courier/ledger.sqlite"),
            "sqlite:///var/lib/edi-courier/ledger.sqlite"
        );
    }

    #[test]
    fn the_engine_is_chosen_by_the_url() {
        assert_eq!(Dialect::of("sqlite://ledger.sqlite"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::of("postgres://h/db"), Some(Dialect::Postgres));
        assert_eq!(Dialect::of("postgresql://h/db"), Some(Dialect::Postgres));
        assert_eq!(Dialect::of("mysql://h/db"), None);
    }

    /// Shared values are bound once, ahead of the rows, and numbered so on
    /// each engine; one bound after a row would take a row value's number.
    #[test]
    fn constants_come_before_the_rows() {
        let statement = |d: Dialect| {
            let mut q = Values::statement(d);
            let at = q.constant("2026-12-06T10:00:00Z");
            q.sql(&format!(
                "INSERT INTO t (at, a, b) SELECT {at}, v.column1, v.column2 FROM (VALUES "
            ));
            q.rows([(1_i64, "x"), (2, "y")], |row, (a, b)| {
                row.bind(a).bind(b);
            });
            q.sql(") AS v");
            q.finish().map(|(sql, args)| (sql, args.values.0.len()))
        };
        let (sql, bound) = statement(Dialect::Postgres).unwrap();
        assert_eq!(
            sql,
            "INSERT INTO t (at, a, b) SELECT $1, v.column1, v.column2 FROM (VALUES ($2, $3), ($4, $5)) AS v"
        );
        assert_eq!(bound, 5);
        let (sql, _) = statement(Dialect::Sqlite).unwrap();
        assert!(sql.contains("SELECT ?, v.column1") && sql.ends_with("(?, ?), (?, ?)) AS v"));

        let mut late = Values::statement(Dialect::Sqlite);
        late.rows([1_i64], |row, a| {
            row.bind(a);
        });
        late.constant(2_i64);
        assert!(late.finish().is_err());
    }

    #[test]
    fn an_sqlite_ledger_names_its_file() {
        let file = |u: &str| LedgerUrl::new(u.into()).sqlite_file();
        assert_eq!(
            file("sqlite:///var/lib/l.sqlite?mode=rwc"),
            Some("/var/lib/l.sqlite".into())
        );
        assert_eq!(file("sqlite://:memory:"), None);
        assert_eq!(file("postgres://h/db"), None);
    }
}
