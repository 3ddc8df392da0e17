//! Topic patterns: `-t` and `--sub-topic` with `%i` (the client's index in its job, from 0)
//! and `%c` (its client identifier), as emqtt-bench writes them.
//!
//! Rules:
//! - `%i` and `%c` are replaced wherever they appear; `%%` is a literal `%`; any other `%x`
//!   is kept as it is.
//! - [`wildcard`] turns a publish pattern into the filter that matches every topic it can
//!   produce: each level holding `%i` or `%c` becomes `+`.

/// Expands `pattern` for client `index` whose identifier is `client_id`.
pub(crate) fn expand(pattern: &str, index: usize, client_id: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('i') => out.push_str(&index.to_string()),
            Some('c') => out.push_str(client_id),
            Some('%') => out.push('%'),
            _ => {
                out.push('%');
                continue;
            }
        }
        chars.next();
    }
    out
}

/// Whether `pattern` varies per client.
pub(crate) fn varies(pattern: &str) -> bool {
    expand(pattern, 0, "a") != expand(pattern, 1, "b")
}

/// The filter matching every topic `pattern` expands to.
pub(crate) fn wildcard(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|level| {
            if varies(level) {
                "+".to_owned()
            } else {
                expand(level, 0, "")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_client_id() {
        assert_eq!(expand("bench/%i/x", 7, "c7"), "bench/7/x");
        assert_eq!(expand("%c/%i", 3, "tbp3"), "tbp3/3");
        assert_eq!(expand("100%%/%d", 0, ""), "100%/%d");
        assert_eq!(expand("end%", 0, ""), "end%");
        assert!(varies("a/%i") && !varies("a/b"));
    }

    #[test]
    fn wildcards_replace_varying_levels() {
        assert_eq!(wildcard("bench/%i"), "bench/+");
        assert_eq!(wildcard("bench/x%c/%i/t"), "bench/+/+/t");
        assert_eq!(wildcard("bench/fixed"), "bench/fixed");
    }
}
