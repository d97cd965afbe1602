//! What a history row is written from: an [`Entry`] of its migration, how
//! long it took ([`Took`]), and who applied it.

/// What a history row records of its migration.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    pub(crate) version: i64,
    pub(crate) description: &'a str,
    pub(crate) checksum: &'a [u8],
    pub(crate) chain: &'a [u8],
    /// Who applied it ([`applied_by`]), or where it was taken over from.
    pub(crate) applied_by: &'a str,
    /// Its down SQL, kept for a binary that lacks the migration.
    pub(crate) down: Option<EntryDown<'a>>,
    /// Whether it is marked `-- stowage:compatible`.
    pub(crate) compatible: bool,
}

/// The down SQL an [`Entry`] keeps.
#[derive(Debug, Clone)]
pub(crate) struct EntryDown<'a> {
    pub(crate) sql: &'a str,
    pub(crate) path: &'a str,
    pub(crate) checksum: [u8; 32],
    pub(crate) no_transaction: bool,
}

impl<'a> Entry<'a> {
    /// The entry of `m`, applied by `applied_by`.
    pub(crate) fn of(m: &'a crate::Migration, applied_by: &'a str) -> Entry<'a> {
        Entry {
            version: m.version(),
            description: m.description(),
            checksum: m.checksum(),
            chain: m.chain(),
            applied_by,
            down: m.down_sql().map(|sql| EntryDown {
                sql,
                path: m.down_path().unwrap_or(m.source_path()),
                checksum: sha256(sql),
                no_transaction: m.no_transaction(),
            }),
            compatible: m.compatible() && !m.is_repeatable(),
        }
    }
}

/// How long a migration took, as its row records it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Took<'a> {
    /// Measured here, in milliseconds.
    Ms(i64),
    /// Measured by the server: an SQL expression of whole milliseconds.
    Sql(&'a str),
}

impl Took<'_> {
    /// Measured here: `elapsed` in whole milliseconds.
    pub(crate) fn since(started: std::time::Instant) -> Took<'static> {
        Took::Ms(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX))
    }

    /// The duration as the row's SQL writes it.
    pub(crate) fn sql(self) -> String {
        match self {
            Took::Ms(ms) => ms.to_string(),
            Took::Sql(expr) => expr.to_owned(),
        }
    }
}

/// Who is applying: host name and program, for `status`.
pub(crate) fn applied_by() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown-program".to_owned());
    format!("{host} {program} (pid {})", std::process::id())
}

/// SHA-256 of a stored down SQL.
pub(crate) fn sha256(sql: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(sql.as_bytes()).into()
}
