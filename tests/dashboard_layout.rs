//! The dashboard and the alert rules read Analytics Engine slots by number; this test ties every
//! slot they read to `gastown_town::metrics::layout`, the one table the writer fills points from.
//!
//! For each SQL query (panel targets, template variables, alert rules) it finds the point kinds the
//! query filters on (`blob1 = '<kind>'`) and fails when the query reads a `blobN`/`doubleN` the
//! layout does not define for such a kind, filters on a kind the layout does not know, reads a slot
//! without such a filter, or names a single-slot expression (`double8 AS x`, `SUM(... double2 ...)
//! AS x`) anything but the slot's field name (optionally followed by `_suffix`, e.g.
//! `wall_clock_ms_p95`).

use gastown_town::metrics::layout::{self, Field, Slot};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn repo_file(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Sym(char),
}

/// A small SQL tokenizer: words (identifiers, keywords, numbers, `$macros`), quoted strings and
/// single-character symbols. `--` comments are skipped.
fn tokenize(sql: &str) -> Vec<Tok> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if c.is_alphanumeric() || c == '_' || c == '$' || c == '.' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$' | '.'))
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            out.push(Tok::Sym(c));
            i += 1;
        }
    }
    out
}

/// `blobN` / `doubleN` as a slot.
fn slot_of(word: &str) -> Option<Slot> {
    let (make, digits): (fn(u8) -> Slot, &str) = if let Some(d) = word.strip_prefix("blob") {
        (Slot::Blob, d)
    } else if let Some(d) = word.strip_prefix("double") {
        (Slot::Double, d)
    } else {
        return None;
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(make)
}

fn is_word(t: &Tok, w: &str) -> bool {
    matches!(t, Tok::Word(x) if x.eq_ignore_ascii_case(w))
}

/// The point kinds a query filters on: every `blob1 = '<kind>'`.
fn kinds(toks: &[Tok]) -> Vec<String> {
    toks.windows(3)
        .filter_map(|w| match w {
            [Tok::Word(col), Tok::Sym('='), Tok::Str(kind)] if col == "blob1" => Some(kind.clone()),
            _ => None,
        })
        .collect()
}

/// The layout field at `slot` for `kind`.
fn field_at(kind: &str, slot: Slot) -> Option<Field> {
    layout::fields_of(kind)?
        .iter()
        .copied()
        .find(|f| f.slot == slot)
}

/// Everything wrong with one query, as messages.
fn check_query(sql: &str) -> Vec<String> {
    let toks = tokenize(sql);
    let mut problems = Vec::new();
    let kinds = kinds(&toks);
    for kind in &kinds {
        if layout::fields_of(kind).is_none() {
            problems.push(format!(
                "filters on blob1 = '{kind}', a point kind the layout does not define"
            ));
        }
    }
    let known: Vec<&String> = kinds
        .iter()
        .filter(|k| layout::fields_of(k).is_some())
        .collect();

    let mut slots_read = BTreeSet::new();
    for t in &toks {
        if let Tok::Word(w) = t {
            if let Some(slot) = slot_of(w) {
                slots_read.insert(w.clone());
                if kinds.is_empty() {
                    problems.push(format!("reads {w} without a blob1 = '<kind>' filter"));
                }
                for kind in &known {
                    if field_at(kind, slot).is_none() {
                        problems.push(format!(
                            "reads {w}, which the layout does not define for '{kind}'"
                        ));
                    }
                }
            }
        }
    }

    // Aliases: the expression of each `<expr> AS <alias>` runs back to the previous `,`,
    // `SELECT` or unmatched `(` at its own depth.
    for (i, t) in toks.iter().enumerate() {
        if !is_word(t, "AS") {
            continue;
        }
        let Some(Tok::Word(alias)) = toks.get(i + 1) else {
            problems.push("AS without an alias".to_owned());
            continue;
        };
        let mut depth = 0usize;
        let mut start = 0;
        for j in (0..i).rev() {
            match &toks[j] {
                Tok::Sym(')') => depth += 1,
                Tok::Sym('(') if depth == 0 => {
                    start = j + 1;
                    break;
                }
                Tok::Sym('(') => depth -= 1,
                Tok::Sym(',') if depth == 0 => {
                    start = j + 1;
                    break;
                }
                w if depth == 0 && is_word(w, "SELECT") => {
                    start = j + 1;
                    break;
                }
                _ => {}
            }
        }
        let mut expr_slots: Vec<Slot> = Vec::new();
        for t in &toks[start..i] {
            if let Some(slot) = match t {
                Tok::Word(w) => slot_of(w),
                _ => None,
            } {
                if !expr_slots.contains(&slot) {
                    expr_slots.push(slot);
                }
            }
        }
        let [slot] = expr_slots[..] else {
            continue;
        };
        for kind in &known {
            if let Some(f) = field_at(kind, slot) {
                let ok = alias == f.name
                    || alias
                        .strip_prefix(f.name)
                        .is_some_and(|rest| rest.starts_with('_'));
                if !ok {
                    problems.push(format!(
                        "names {} '{alias}', but the layout calls it '{}' in '{kind}'",
                        slot.column(),
                        f.name
                    ));
                }
            }
        }
    }
    problems
}

/// `(where, sql)` of every query in the dashboard: panel targets (rows included) and
/// template variables.
fn dashboard_queries(json: &str) -> Vec<(String, String)> {
    let dash: serde_json::Value = serde_json::from_str(json).expect("the dashboard is JSON");
    let mut out = Vec::new();
    fn panels(list: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            let id = p["id"].to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(q) = t["query"].as_str() {
                    out.push((format!("panel {id} target {}", t["refId"]), q.to_owned()));
                }
            }
            panels(&p["panels"], out);
        }
    }
    panels(&dash["panels"], &mut out);
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["query"].as_str() {
            if q.to_ascii_uppercase().contains("SELECT") {
                out.push((format!("variable {}", v["name"]), q.to_owned()));
            }
        }
    }
    out
}

/// The `query: |-` block scalars of the alert rules file, with the number of rules.
fn alert_queries(yaml: &str) -> (Vec<(String, String)>, usize) {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = Vec::new();
    let mut rules = 0;
    let mut uid = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(u) = trimmed.strip_prefix("- uid:") {
            rules += 1;
            uid = u.trim().to_owned();
        }
        if let Some(style) = trimmed.strip_prefix("query:") {
            let style = style.trim();
            assert!(
                style.starts_with('|'),
                "alert {uid}: write the query as a `|-` block"
            );
            let key_indent = indent(line);
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) > key_indent) {
                body.push(lines[i].trim());
                i += 1;
            }
            out.push((format!("alert {uid}"), body.join("\n").trim().to_owned()));
            continue;
        }
        i += 1;
    }
    (out, rules)
}

#[test]
fn every_dashboard_and_alert_query_reads_only_layout_slots_under_layout_names() {
    let dash = dashboard_queries(&repo_file("dashboards/gastown-reconciler.json"));
    let (alerts, rules) = alert_queries(&repo_file("dashboards/alerts.yaml"));
    assert!(
        dash.len() >= 12,
        "found only {} dashboard queries",
        dash.len()
    );
    assert_eq!(
        alerts.len(),
        rules,
        "every alert rule has exactly one query"
    );
    assert!(rules >= 5, "found only {rules} alert rules");

    let mut failures = Vec::new();
    for (place, sql) in dash.iter().chain(&alerts) {
        if kinds(&tokenize(sql)).is_empty() {
            failures.push(format!("{place}: no blob1 = '<kind>' filter"));
        }
        for p in check_query(sql) {
            failures.push(format!("{place}: {p}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_dashboard_reads_every_tick_metric() {
    let dash = dashboard_queries(&repo_file("dashboards/gastown-reconciler.json"));
    let read: BTreeSet<String> = dash
        .iter()
        .flat_map(|(_, q)| tokenize(q))
        .filter_map(|t| match t {
            Tok::Word(w) if slot_of(&w).is_some() => Some(w),
            _ => None,
        })
        .collect();
    let missing: Vec<&str> = layout::TICK_FIELDS
        .iter()
        .filter(|f| matches!(f.slot, Slot::Double(_)) && !read.contains(&f.slot.column()))
        .map(|f| f.name)
        .collect();
    assert!(missing.is_empty(), "no panel shows {missing:?}");
}

#[test]
fn the_check_rejects_slots_and_names_the_layout_does_not_have() {
    let tick =
        "SELECT double8 AS pending_event_count FROM gastown_events WHERE blob1 = 'reconciler_tick'";
    assert!(check_query(tick).is_empty(), "{:?}", check_query(tick));

    let undefined = "SELECT double11 AS x FROM gastown_events WHERE blob1 = 'reconciler_tick'";
    assert!(check_query(undefined)[0].contains("does not define"));

    let wrong_kind =
        "SELECT SUM(double8) AS count FROM gastown_events WHERE blob1 = 'reconciler_action'";
    assert!(check_query(wrong_kind)
        .iter()
        .any(|p| p.contains("double8") && p.contains("reconciler_action")));

    let misnamed = "SELECT SUM(_sample_interval * double2) / SUM(_sample_interval) AS pending \
                    FROM gastown_events WHERE blob1 = 'reconciler_tick'";
    assert_eq!(
        check_query(misnamed),
        ["names double2 'pending', but the layout calls it 'events_drained' in 'reconciler_tick'"]
    );

    let suffixed =
        "SELECT quantileExactWeighted(0.95)(double1, _sample_interval) AS wall_clock_ms_p95 \
                    FROM gastown_events WHERE blob1 = 'reconciler_tick'";
    assert!(check_query(suffixed).is_empty());
    let prefix_only =
        "SELECT double1 AS wall_clock_msx FROM gastown_events WHERE blob1 = 'reconciler_tick'";
    assert_eq!(check_query(prefix_only).len(), 1);

    let unknown_kind =
        "SELECT double1 AS wall_clock_ms FROM gastown_events WHERE blob1 = 'reconciler_tock'";
    assert!(check_query(unknown_kind)[0].contains("'reconciler_tock'"));

    let unfiltered = "SELECT blob6 AS town_id FROM gastown_events";
    assert!(check_query(unfiltered)[0].contains("without a blob1"));

    // A nested select: the inner alias is checked, the outer one reads no slot.
    let nested = "SELECT max(p) AS pending_event_count FROM (SELECT blob6 AS town, \
                  argMax(double8, timestamp) AS p FROM gastown_events WHERE blob1 = 'reconciler_tick' GROUP BY town)";
    let problems = check_query(nested);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("blob6 'town'"));
    assert!(problems[1].contains("double8 'p'"));
}

#[test]
fn alert_queries_are_read_from_block_scalars() {
    let yaml = "groups:\n  - rules:\n      - uid: a\n        data:\n          - model:\n              query: |-\n                SELECT double8 AS pending_event_count\n                FROM gastown_events\n\n                WHERE blob1 = 'reconciler_tick'\n              format: table\n      - uid: b\n";
    let (queries, rules) = alert_queries(yaml);
    assert_eq!(rules, 2);
    assert_eq!(
        queries,
        [(
            "alert a".to_owned(),
            "SELECT double8 AS pending_event_count\nFROM gastown_events\n\nWHERE blob1 = 'reconciler_tick'".to_owned()
        )]
    );
}
