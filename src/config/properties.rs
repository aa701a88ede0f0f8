//! Java-properties files (server.properties): the parser that turns text into numbered entries.

use super::one_line;

/// One `key=value` entry of a properties file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PropertyEntry {
    /// Line (counting from 1) where the entry starts.
    pub(super) line: usize,
    pub(super) key: String,
    pub(super) value: String,
}

/// Parses Java-properties text into entries; an error carries the line number and the problem. Follows java.util.Properties: `=`, `:` or whitespace separates key
/// from value, `#` / `!` start comment lines, a trailing backslash continues the line, and
/// `\t \n \r \f \uXXXX` escapes are understood. Unlike Java, trailing whitespace of values is trimmed.
pub(super) fn parse_properties(text: &str) -> Result<Vec<PropertyEntry>, (usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut entries = Vec::new();
    let mut next = 0;
    while next < lines.len() {
        let start_line = next + 1;
        let first = lines[next].trim_start();
        next += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut current = first;
        loop {
            let trailing_backslashes = current.chars().rev().take_while(|&c| c == '\\').count();
            if trailing_backslashes % 2 == 1 {
                logical.push_str(&current[..current.len() - 1]);
                match lines.get(next) {
                    Some(continuation) => {
                        current = continuation.trim_start();
                        next += 1;
                    }
                    None => break,
                }
            } else {
                logical.push_str(current);
                break;
            }
        }
        let (raw_key, raw_value) = split_property(&logical);
        let key = unescape(raw_key).map_err(|problem| (start_line, problem))?;
        let value = unescape(raw_value).map_err(|problem| (start_line, problem))?;
        entries.push(PropertyEntry {
            line: start_line,
            key: key.trim().to_string(),
            value: value.trim().to_string(),
        });
    }
    Ok(entries)
}

/// Splits a logical properties line at the first unescaped `=`, `:` or whitespace, swallowing one
/// separator and the whitespace around it.
pub(super) fn split_property(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || c.is_whitespace() {
            key_end = i;
            break;
        }
    }
    let key = &line[..key_end];
    let mut rest = line[key_end..].trim_start();
    if let Some(after) = rest.strip_prefix(['=', ':']) {
        rest = after.trim_start();
    }
    (key, rest)
}

/// Resolves Java-properties backslash escapes.
pub(super) fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let decoded = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32);
                match decoded {
                    Some(ch) => out.push(ch),
                    None => return Err(format!("malformed \\u escape '\\u{}'", one_line(&hex))),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}
