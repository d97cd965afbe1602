//! The schema snapshot: the schema the migrations build at a version, as
//! a file beside them (`schema.<dialect>.snapshot`) that
//! `embed_migrations!` embeds, so that [`Migrator::drift`] needs no
//! scratch database on a database at that version.
//!
//! The file is text: a header of `-- key: value` lines (the dialect, the
//! server it was read on, the version and the migrations' chained
//! checksum there), then each object as a `-- object: <kind> <length>
//! <name>` line followed by its definition of that many bytes. Lengths,
//! not delimiters, so that no definition can end an object early.

// Read back only by `drift` and written only by `testing`, both of `any`.
#![cfg_attr(not(feature = "any"), allow(dead_code))]

use super::{ObjectKind, Schema, SchemaObject};
use crate::engine::connection::{Conn, Database, Ty};
use crate::{Dialect, Error, Migrator};

/// Every kind: a snapshot names each by its [`ObjectKind`] display, `_`
/// for spaces (`materialized_view`).
const KINDS: [ObjectKind; 14] = [
    ObjectKind::Extension,
    ObjectKind::Schema,
    ObjectKind::Type,
    ObjectKind::Sequence,
    ObjectKind::Function,
    ObjectKind::Table,
    ObjectKind::View,
    ObjectKind::MaterializedView,
    ObjectKind::Index,
    ObjectKind::Constraint,
    ObjectKind::SequenceOwner,
    ObjectKind::Trigger,
    ObjectKind::Event,
    ObjectKind::Comment,
];

/// The word a snapshot names `kind` with.
fn word(kind: ObjectKind) -> String {
    kind.to_string().replace(' ', "_")
}

const TITLE: &str = "-- stowage schema snapshot: the schema the migrations build at the version below, \
                     as Migrator::dump reads it (kept current by stowage::testing::check_schema_snapshot)";

/// The file name of `dialect`'s snapshot, in the migrations folder.
#[cfg(feature = "testing")]
pub(crate) fn file_name(dialect: Dialect) -> String {
    format!("schema.{}.snapshot", dialect.folder())
}

/// A snapshot, read or to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// The server's name and major version ([`server`]).
    pub(crate) server: String,
    /// The version the schema is at.
    pub(crate) version: i64,
    /// The chained checksum of the migrations up to `version`, in hex.
    pub(crate) chain: String,
    pub(crate) schema: Schema,
}

impl Snapshot {
    /// The file's text; [`Snapshot::parse`] reads it back.
    pub(crate) fn to_text(&self) -> String {
        let mut out = format!(
            "{TITLE}\n-- dialect: {}\n-- server: {}\n-- version: {}\n-- migrations: {}\n",
            self.schema.dialect.folder(),
            self.server,
            self.version,
            self.chain
        );
        for object in &self.schema.objects {
            out.push_str(&format!(
                "-- object: {} {} {}\n{}\n",
                word(object.kind),
                object.definition.len(),
                object.name,
                object.definition
            ));
        }
        out
    }

    /// Read a snapshot's text; what is wrong with it otherwise.
    pub(crate) fn parse(text: &str) -> Result<Snapshot, String> {
        // A checkout that turned every line end into CRLF (git's
        // `core.autocrlf` on Windows) is read as written.
        let unconverted;
        let text = match text.starts_with(&format!("{TITLE}\r\n")) {
            true => {
                unconverted = text.replace("\r\n", "\n");
                unconverted.as_str()
            }
            false => text,
        };
        let mut rest = text;
        let mut line = || -> Option<&str> {
            let (line, after) = rest.split_once('\n')?;
            rest = after;
            Some(line)
        };
        if line() != Some(TITLE) {
            return Err("does not start with the snapshot's title line".to_owned());
        }
        let mut field = |key: &str| -> Result<String, String> {
            line()
                .and_then(|l| l.strip_prefix("-- ")?.strip_prefix(key)?.strip_prefix(": "))
                .map(str::to_owned)
                .ok_or_else(|| format!("has no `-- {key}:` line where it belongs"))
        };
        let dialect = field("dialect")?;
        let dialect = Dialect::from_folder(&dialect)
            .ok_or_else(|| format!("names an unknown dialect `{dialect}`"))?;
        let server = field("server")?;
        let version = field("version")?;
        let version = version
            .parse::<i64>()
            .map_err(|_| format!("has a version that is not a number: `{version}`"))?;
        let chain = field("migrations")?;
        let mut objects = Vec::new();
        while !rest.is_empty() {
            let (header, after) = rest
                .split_once('\n')
                .ok_or("ends in the middle of an object's line")?;
            let malformed = || format!("has a malformed object line: `{header}`");
            let mut words = header
                .strip_prefix("-- object: ")
                .ok_or_else(malformed)?
                .splitn(3, ' ');
            let (Some(kind), Some(length), Some(name)) = (words.next(), words.next(), words.next())
            else {
                return Err(malformed());
            };
            let kind = KINDS
                .into_iter()
                .find(|known| word(*known) == kind)
                .ok_or_else(malformed)?;
            let length: usize = length.parse().map_err(|_| malformed())?;
            let definition = after
                .get(..length)
                .filter(|_| after[length..].starts_with('\n'))
                .ok_or_else(|| format!("ends before the definition of {kind} {name} does"))?;
            // A MySQL table as the model now lists its keys (a snapshot
            // written before kept the server's order).
            let definition = match (dialect, kind) {
                (Dialect::MySql, ObjectKind::Table) => super::mysql::keys_sorted(definition),
                _ => definition.to_owned(),
            };
            objects.push(SchemaObject {
                kind,
                name: name.to_owned(),
                definition,
            });
            rest = &after[length + 1..];
        }
        Ok(Snapshot {
            server,
            version,
            chain,
            schema: Schema::new(dialect, objects),
        })
    }
}

/// The name and major version of the server on `conn` (`PostgreSQL 15`,
/// `MariaDB 10.11`, `MySQL 8.0`, `SQLite 3`): catalogue renderings
/// change between majors, so a snapshot serves only the same one.
pub(crate) async fn server(conn: &mut Conn<'_>, dialect: Dialect) -> Result<String, Error> {
    let sql = match dialect {
        Dialect::Postgres => "SELECT current_setting('server_version_num')",
        Dialect::MySql => "SELECT VERSION()",
        _ => "SELECT sqlite_version()",
    };
    let version = conn
        .fetch_one(sql.to_owned(), Ty::Text)
        .await
        .map_err(Error::db("cannot read the server's version"))?;
    let version = version
        .as_ref()
        .and_then(|cell| cell.text())
        .unwrap_or_default()
        .to_owned();
    Ok(match dialect {
        Dialect::Postgres => {
            let number: i64 = version.trim().parse().unwrap_or(0);
            format!("PostgreSQL {}", number / 10000)
        }
        Dialect::MySql => {
            let flavour = match version.to_ascii_lowercase().contains("mariadb") {
                true => "MariaDB",
                false => "MySQL",
            };
            let major: Vec<&str> = version.split(['.', '-']).take(2).collect();
            format!("{flavour} {}", major.join("."))
        }
        _ => format!("SQLite {}", version.split('.').next().unwrap_or_default()),
    })
}

impl Migrator {
    /// The database's schema as a snapshot file's text, to be kept in the
    /// migrations folder as `schema.<dialect>.snapshot` (`schema.postgres.snapshot`,
    /// `schema.mysql.snapshot`, `schema.sqlite.snapshot`), where
    /// `embed_migrations!` embeds it: `Migrator::drift` (feature `any`) then compares a
    /// database at the snapshot's version with it, on a server of the same
    /// name and major version, instead of building the expected schema in
    /// a scratch database. Read on a database the migrations built (at
    /// their head, for drift to use it after deploying);
    /// `stowage::testing::check_schema_snapshot` (feature `testing`) keeps
    /// the file current.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTarget`] when the database has no migration
    /// applied; the errors of [`Migrator::status`] and [`Migrator::dump`].
    pub async fn schema_snapshot<'a>(&self, db: impl Database<'a>) -> Result<String, Error> {
        let (mut conn, dialect) = super::connected(db).await?;
        let version = self.status(&mut conn).await?.current.ok_or_else(|| {
            Error::InvalidTarget(
                "a snapshot is of the schema at a version; this database has no migration applied"
                    .to_owned(),
            )
        })?;
        let chain = self.chain_at(dialect, version)?;
        let server = server(&mut conn, dialect).await?;
        let schema = self.dump(&mut conn).await?;
        Ok(Snapshot {
            server,
            version,
            chain,
            schema,
        }
        .to_text())
    }

    /// The chained checksum, in hex, of `dialect`'s migrations up to
    /// `version`.
    fn chain_at(&self, dialect: Dialect, version: i64) -> Result<String, Error> {
        let migration = self
            .set(dialect)
            .and_then(|set| set.get(version))
            .ok_or_else(|| {
                Error::InvalidTarget(format!(
                    "version {version} is not one of this binary's {dialect} migrations"
                ))
            })?;
        Ok(migration
            .chain()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect())
    }

    /// The embedded snapshot of `dialect` that holds the schema at
    /// `version` on `server`, if there is one; `None` (with the reason
    /// logged) when it was made at another version, from other migrations
    /// or on another server.
    ///
    /// # Errors
    ///
    /// [`Error::SchemaFile`] when an embedded snapshot cannot be read.
    pub(crate) fn embedded_snapshot(
        &self,
        dialect: Dialect,
        version: i64,
        server: &str,
    ) -> Result<Option<Schema>, Error> {
        let chain = self.chain_at(dialect, version).ok();
        for text in self.snapshots() {
            let snapshot = Snapshot::parse(text).map_err(|problem| Error::SchemaFile {
                path: "snapshot embedded in this binary".to_owned(),
                problem: format!("{problem}; write it again with stowage::testing::check_schema_snapshot"),
            })?;
            if snapshot.schema.dialect != dialect {
                continue;
            }
            let usable = snapshot.version == version
                && chain.as_deref() == Some(snapshot.chain.as_str())
                && snapshot.server == server;
            if usable {
                return Ok(Some(snapshot.schema));
            }
            tracing::debug!(
                snapshot.version,
                snapshot.server,
                version,
                server,
                "the embedded schema snapshot is of another version, migrations or server; \
                 building the expected schema in a scratch database"
            );
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(objects: Vec<SchemaObject>) -> Snapshot {
        Snapshot {
            server: "PostgreSQL 15".to_owned(),
            version: 20240101,
            chain: "ab".repeat(32),
            schema: Schema::new(Dialect::Postgres, objects),
        }
    }

    #[test]
    fn a_mysql_snapshot_lists_keys_as_the_model_does() {
        let table = |keys: &str| SchemaObject {
            kind: ObjectKind::Table,
            name: "k".to_owned(),
            definition: format!("CREATE TABLE `k` (\n  `a` int(11) DEFAULT NULL,\n{keys}\n) ENGINE=InnoDB"),
        };
        let of = |object: SchemaObject| Snapshot {
            server: "MariaDB 10.11".to_owned(),
            schema: Schema::new(Dialect::MySql, vec![object]),
            ..snapshot(Vec::new())
        };
        let old = of(table("  UNIQUE KEY `z` (`a`),\n  UNIQUE KEY `b` (`a`)"));
        let listed = of(table("  UNIQUE KEY `b` (`a`),\n  UNIQUE KEY `z` (`a`)"));
        assert_eq!(Snapshot::parse(&old.to_text()), Ok(listed));
    }

    #[test]
    fn every_kind_has_a_word_of_its_own() {
        let words: std::collections::BTreeSet<String> = KINDS.into_iter().map(word).collect();
        assert_eq!(words.len(), KINDS.len());
        assert!(words.iter().all(|w| !w.contains(' ')), "{words:?}");
    }

    #[test]
    fn a_snapshot_reads_back_as_written() {
        let tricky = "CREATE FUNCTION f() RETURNS int AS $$\n-- object: table 3 x\nSELECT 1\n$$ LANGUAGE sql\n";
        let written = snapshot(vec![
            SchemaObject {
                kind: ObjectKind::Function,
                name: "public.f()".to_owned(),
                definition: tricky.to_owned(),
            },
            SchemaObject {
                kind: ObjectKind::MaterializedView,
                name: "public.\"odd name\"".to_owned(),
                definition: "CREATE MATERIALIZED VIEW \"odd name\" AS SELECT 'é'".to_owned(),
            },
        ]);
        let text = written.to_text();
        assert_eq!(Snapshot::parse(&text), Ok(written.clone()));
        assert_eq!(Snapshot::parse(&snapshot(Vec::new()).to_text()), Ok(snapshot(Vec::new())));
        // Cut anywhere, or with a length that no longer fits, it is refused.
        for cut in [10, text.len() / 2, text.len() - 1] {
            if text.is_char_boundary(cut) {
                assert!(Snapshot::parse(&text[..cut]).is_err(), "cut at {cut}");
            }
        }
        let lengthened = text.replacen(&format!(" {} ", tricky.len()), &format!(" {} ", tricky.len() + 1), 1);
        assert!(Snapshot::parse(&lengthened).is_err());
        assert!(Snapshot::parse("CREATE TABLE t (a int);\n").is_err());
        // Checked out with CRLF line ends, it reads the same.
        assert_eq!(Snapshot::parse(&text.replace('\n', "\r\n")), Ok(written));
    }
}
