//! The user name and password in a URL's authority (`user:password@host:port`), as `tern pub`
//! and `tern sub` (`-L`) and `tern shell` (`connect URL`) read them: percent-decoded, the
//! password optional.

/// User name and password of the authority `user:password@host`, percent-decoded; `None`s
/// without an `@`.
pub(crate) fn userinfo(authority: &str) -> (Option<String>, Option<String>) {
    let Some((info, _)) = authority.rsplit_once('@') else {
        return (None, None);
    };
    let (user, password) = match info.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (info, None),
    };
    (Some(percent_decode(user)), password.map(percent_decode))
}

/// `%XX` escapes turned into their bytes; a `%` not followed by two hex digits stays.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::userinfo;

    #[test]
    fn user_and_password_are_percent_decoded() {
        assert_eq!(
            userinfo("us%40er:p%3Ass%zz@host:1883"),
            (Some("us@er".into()), Some("p:ss%zz".into()))
        );
        assert_eq!(userinfo("user@host"), (Some("user".into()), None));
        assert_eq!(userinfo("host:1883"), (None, None));
    }
}
