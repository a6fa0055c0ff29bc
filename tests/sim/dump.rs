//! A full dump of the town's tables, for comparing two towns.

use gastown_town::sql::Sql;
use serde_json::{Map, Value as Json};

/// Every row of every table (but `skip`), each table's rows sorted by their JSON text so that
/// two towns holding the same rows compare equal whatever order the rows were written in.
pub fn tables(sql: &dyn Sql, skip: &[&str]) -> Map<String, Json> {
    let names = sql
        .query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             ORDER BY name",
            &[],
        )
        .expect("list tables");
    let mut all = Map::new();
    for row in names {
        let name = row.text("name").expect("table name");
        if skip.contains(&name.as_str()) {
            continue;
        }
        let mut rows: Vec<(String, Json)> = sql
            .query(&format!("SELECT * FROM \"{name}\""), &[])
            .expect("dump table")
            .into_iter()
            .map(|r| {
                let json = r.to_json();
                (json.to_string(), json)
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        all.insert(
            name,
            Json::Array(rows.into_iter().map(|(_, j)| j).collect()),
        );
    }
    all
}

/// The first difference between two dumps, described for a failure message.
pub fn first_difference(a: &Map<String, Json>, b: &Map<String, Json>) -> Option<String> {
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for name in names {
        let (ra, rb) = (a.get(name), b.get(name));
        if ra == rb {
            continue;
        }
        let empty = Vec::new();
        let ra = ra.and_then(Json::as_array).unwrap_or(&empty);
        let rb = rb.and_then(Json::as_array).unwrap_or(&empty);
        let only_a: Vec<&Json> = ra.iter().filter(|r| !rb.contains(r)).take(3).collect();
        let only_b: Vec<&Json> = rb.iter().filter(|r| !ra.contains(r)).take(3).collect();
        return Some(format!(
            "table {name}: {} vs {} rows\n  only in the first: {}\n  only in the second: {}",
            ra.len(),
            rb.len(),
            serde_json::to_string_pretty(&only_a).unwrap_or_default(),
            serde_json::to_string_pretty(&only_b).unwrap_or_default()
        ));
    }
    None
}
