//! Finds where a key sits in config text, for error messages about values that parsed fine.

use toml_edit::{ImDocument, Item, Table, TableLike};

/// 1-based line and column of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Position of a dotted key path like `source[1].fps`; falls back to the deepest parent that
/// exists, and to line 1 when nothing matches.
pub(super) fn position_of_key(text: &str, path: &str) -> (usize, usize) {
    let Ok(doc) = ImDocument::parse(text) else {
        return (1, 1);
    };
    let mut best: Option<usize> = None;
    let mut node = Node::Table(doc.as_table());
    for segment in segments(path) {
        let next = match (segment, node) {
            (Segment::Key(name), Node::Table(table)) => table_like_child(table, name, &mut best),
            (Segment::Key(name), Node::Item(item)) => match item.as_table_like() {
                Some(table) => table_like_child(table, name, &mut best),
                None => None,
            },
            (Segment::Index(i), Node::Item(Item::ArrayOfTables(tables))) => {
                tables.get(i).map(|t| {
                    if let Some(span) = t.span() {
                        best = Some(span.start);
                    }
                    Node::Table(t)
                })
            }
            (Segment::Index(i), Node::Item(item)) => {
                if let Some(span) = item
                    .as_array()
                    .and_then(|a| a.get(i))
                    .and_then(|v| v.span())
                {
                    best = Some(span.start);
                }
                None
            }
            (Segment::Index(_), Node::Table(_)) => None,
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    best.map_or((1, 1), |offset| line_column(text, offset))
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Item(&'a Item),
}

fn table_like_child<'a>(
    table: &'a dyn TableLike,
    name: &str,
    best: &mut Option<usize>,
) -> Option<Node<'a>> {
    let (key, item) = table.get_key_value(name)?;
    if let Some(span) = key.span() {
        *best = Some(span.start);
    }
    Some(Node::Item(item))
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> impl Iterator<Item = Segment<'_>> {
    path.split('.').filter(|s| !s.is_empty()).flat_map(|part| {
        let mut pieces = Vec::new();
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            pieces.push(Segment::Key(name));
        }
        while let Some((index, after)) = rest.split_once(']') {
            if let Ok(i) = index.parse() {
                pieces.push(Segment::Index(i));
            }
            rest = after.trim_start_matches('[');
        }
        pieces
    })
}
