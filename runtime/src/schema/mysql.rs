//! MySQL's and MariaDB's schema: the current database's objects as
//! `SHOW CREATE …` renders them, without what differs between two
//! databases of the same schema (`AUTO_INCREMENT=` counters, `DEFINER=`).

use super::{ObjectKind, SchemaObject};
use crate::engine::connection::{Conn, Ty};

/// Every table, sequence (MariaDB), view, routine, trigger and event of
/// the current database, except the tables (and views) in `own` (a list of
/// literals) and their triggers.
pub(super) async fn read(
    conn: &mut Conn<'_>,
    own: &str,
) -> Result<Vec<SchemaObject>, sqlx::Error> {
    let listings = [
        format!(
            "SELECT CAST(CASE TABLE_TYPE WHEN 'VIEW' THEN 'VIEW' WHEN 'SEQUENCE' THEN 'SEQUENCE' \
             ELSE 'TABLE' END AS CHAR), CAST(TABLE_NAME AS CHAR), NULL FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE <> 'TEMPORARY' \
             AND TABLE_NAME NOT IN ({own})"
        ),
        "SELECT CAST(ROUTINE_TYPE AS CHAR), CAST(ROUTINE_NAME AS CHAR), NULL \
         FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()"
            .to_owned(),
        format!(
            "SELECT 'TRIGGER', CAST(TRIGGER_NAME AS CHAR), CAST(CONCAT('CREATE TRIGGER `', \
             REPLACE(TRIGGER_NAME, '`', '``'), '` ', ACTION_TIMING, ' ', EVENT_MANIPULATION, \
             ' ON `', REPLACE(EVENT_OBJECT_TABLE, '`', '``'), '` FOR EACH ROW ', \
             ACTION_STATEMENT) AS CHAR) FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE NOT IN ({own})"
        ),
        "SELECT 'EVENT', CAST(EVENT_NAME AS CHAR), NULL FROM information_schema.EVENTS \
         WHERE EVENT_SCHEMA = DATABASE()"
            .to_owned(),
    ];
    let mut found = Vec::new();
    for listing in listings {
        for row in conn.fetch(listing, &[Ty::Text, Ty::Text, Ty::OptText]).await? {
            let (Some(what), Some(name)) = (row[0].text(), row[1].text()) else {
                continue;
            };
            // A trigger is written from its parts: `SHOW CREATE TRIGGER`
            // gives a date, which `AnyPool` cannot read.
            if let Some(definition) = row[2].text() {
                found.push(SchemaObject {
                    kind: ObjectKind::Trigger,
                    name: name.to_owned(),
                    definition: definition.to_owned(),
                });
                continue;
            }
            let (kind, column) = match what {
                "TABLE" => (ObjectKind::Table, 1),
                "SEQUENCE" => (ObjectKind::Sequence, 1),
                "VIEW" => (ObjectKind::View, 1),
                "PROCEDURE" | "FUNCTION" => (ObjectKind::Function, 2),
                "EVENT" => (ObjectKind::Event, 3),
                _ => continue,
            };
            let show = format!("SHOW CREATE {what} `{}`", name.replace('`', "``"));
            let types = [Ty::OptText, Ty::OptText, Ty::OptText, Ty::OptText];
            // Not prepared: MariaDB answers a prepared `SHOW CREATE VIEW`
            // with the view as it was when first prepared on the connection.
            let rows = conn.fetch_unprepared(show, &types[..=column]).await?;
            let Some(definition) = rows
                .first()
                .and_then(|row| row.get(column))
                .and_then(|cell| cell.text())
            else {
                continue;
            };
            found.push(SchemaObject {
                kind,
                name: name.to_owned(),
                definition: normalise(kind, definition),
            });
        }
    }
    Ok(found)
}

/// `definition` without what two databases of the same schema render
/// differently: a table's `AUTO_INCREMENT=` counter and the order of its
/// keys, and the `DEFINER=` clause of views, routines, triggers and events.
fn normalise(kind: ObjectKind, definition: &str) -> String {
    let definition = match kind {
        ObjectKind::Table => keys_sorted(definition),
        _ => definition.to_owned(),
    };
    let definition = definition.as_str();
    let (clause, ends) = match kind {
        ObjectKind::Table => (" AUTO_INCREMENT=", ' '),
        _ => (" DEFINER=", ' '),
    };
    let Some(start) = definition.find(clause) else {
        return definition.to_owned();
    };
    let rest = &definition[start + clause.len()..];
    // The value: digits, or `user`@`host` (backticked parts may hold spaces).
    let mut quoted = false;
    let end = rest
        .char_indices()
        .find(|&(_, c)| {
            if c == '`' {
                quoted = !quoted;
            }
            !quoted && c == ends
        })
        .map_or(rest.len(), |(i, _)| i);
    format!("{}{}", &definition[..start], &rest[end..])
}

/// A table's keys in one order: the server lists the primary key, the
/// unique keys (those of columns that are `NOT NULL` first: a column made
/// nullable later moves none), then the others, each in the order made, so
/// that one schema made in two orders, or by its dump, is listed two ways.
/// Here each kind is sorted by its text: an order of keys changes nothing
/// a query sees.
pub(super) fn keys_sorted(definition: &str) -> String {
    let class = |line: &str| {
        let line = line.trim_start();
        match line.split_once(' ').map_or(line, |(word, _)| word) {
            "UNIQUE" => Some(1),
            "KEY" => Some(2),
            "FULLTEXT" | "SPATIAL" => Some(3),
            _ => None,
        }
    };
    let mut lines: Vec<&str> = definition.split('\n').collect();
    let keys: Vec<usize> = (0..lines.len()).filter(|&i| class(lines[i]).is_some()).collect();
    let (Some(&first), Some(&last)) = (keys.first(), keys.last()) else {
        return definition.to_owned();
    };
    if last - first + 1 != keys.len() {
        return definition.to_owned(); // not one run of lines: left as it is
    }
    let ends_with_comma = lines[last].ends_with(',');
    let mut sorted: Vec<&str> = lines[first..=last]
        .iter()
        .map(|line| line.trim_end_matches(','))
        .collect();
    sorted.sort_by(|a, b| class(a).cmp(&class(b)).then(a.cmp(b)));
    let count = sorted.len();
    let sorted: Vec<String> = sorted
        .into_iter()
        .enumerate()
        .map(|(i, line)| match i + 1 < count || ends_with_comma {
            true => format!("{line},"),
            false => line.to_owned(),
        })
        .collect();
    let mut out: Vec<&str> = lines.drain(..first).collect();
    out.extend(sorted.iter().map(String::as_str));
    out.extend(lines.drain(last - first + 1..));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_listed_in_one_order() {
        let made = "CREATE TABLE `t` (\n  `a` int(11) DEFAULT NULL,\n  `b` int(11) NOT NULL,\n  PRIMARY KEY (`b`),\n  UNIQUE KEY `z` (`b`),\n  UNIQUE KEY `a` (`a`),\n  KEY `k` (`a`),\n  CONSTRAINT `f` FOREIGN KEY (`a`) REFERENCES `p` (`id`)\n) ENGINE=InnoDB";
        let dumped = "CREATE TABLE `t` (\n  `a` int(11) DEFAULT NULL,\n  `b` int(11) NOT NULL,\n  PRIMARY KEY (`b`),\n  UNIQUE KEY `a` (`a`),\n  UNIQUE KEY `z` (`b`),\n  KEY `k` (`a`),\n  CONSTRAINT `f` FOREIGN KEY (`a`) REFERENCES `p` (`id`)\n) ENGINE=InnoDB";
        assert_eq!(keys_sorted(made), dumped);
        assert_eq!(keys_sorted(dumped), dumped);
        // The last line of the table a key: no comma after it.
        let last = "CREATE TABLE `t` (\n  `a` int(11),\n  KEY `z` (`a`),\n  KEY `b` (`a`)\n) ENGINE=InnoDB";
        assert_eq!(
            keys_sorted(last),
            "CREATE TABLE `t` (\n  `a` int(11),\n  KEY `b` (`a`),\n  KEY `z` (`a`)\n) ENGINE=InnoDB"
        );
    }

    #[test]
    fn counters_and_definers_are_left_out() {
        assert_eq!(
            normalise(
                ObjectKind::Table,
                "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT\n) ENGINE=InnoDB AUTO_INCREMENT=7 DEFAULT CHARSET=utf8mb4"
            ),
            "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
        assert_eq!(
            normalise(
                ObjectKind::View,
                "CREATE ALGORITHM=UNDEFINED DEFINER=`a b`@`%` SQL SECURITY DEFINER VIEW `v` AS select 1"
            ),
            "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select 1"
        );
        assert_eq!(
            normalise(ObjectKind::Trigger, "CREATE trigger tr before insert on t"),
            "CREATE trigger tr before insert on t"
        );
    }
}
