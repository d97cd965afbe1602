//! Passwords kept out of what stowage says: a URL redacted, a driver's
//! message scrubbed.

/// The URL with its password (in the user-info part or a `password=`
/// parameter) replaced by `***`: in place, so the rest reads as written,
/// then wherever else a password the `url` crate reads in it still shows.
pub(crate) fn redact(url: &str) -> String {
    let mut out = redact_in_place(url);
    for secret in passwords(url) {
        if secret.len() >= 3 {
            out = out.replace(&secret, "***");
        }
    }
    out
}

/// The password's places in the user-info part and the query, replaced.
fn redact_in_place(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = out[authority_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| authority_start + i);
        if let Some(at) = out[authority_start..authority_end].rfind('@') {
            let userinfo = &out[authority_start..authority_start + at];
            if let Some(colon) = userinfo.find(':') {
                let password_start = authority_start + colon + 1;
                out.replace_range(password_start..authority_start + at, "***");
            }
        }
    }
    if let Some(query_start) = out.find('?') {
        let (base, query) = out.split_at(query_start + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _))
                    if key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("pass") =>
                {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{base}{}", query.join("&"));
    }
    out
}

/// Remove the URL's password from a driver's message, should it hold it.
pub(super) fn scrub(message: &str, url: &str) -> String {
    let mut message = message.replace(url, &redact(url));
    for secret in passwords(url) {
        if secret.len() >= 3 {
            message = message.replace(&secret, "***");
        }
    }
    message
}

/// The passwords a URL holds (in its user-info part and in `password=` or
/// `pass=` parameters), as written and percent-decoded.
fn passwords(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(scheme_end) = url.find("://") {
        let authority = &url[scheme_end + 3..];
        let authority = &authority[..authority.find(['/', '?', '#']).unwrap_or(authority.len())];
        if let Some(at) = authority.rfind('@')
            && let Some((_, password)) = authority[..at].split_once(':')
        {
            found.push(password.to_owned());
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        for (key, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
            if key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("pass") {
                found.push(value.to_owned());
            }
        }
    }
    // As the URL standard reads it (the `url` crate, which sqlx parses
    // with too): its user-info password and password parameters, decoded.
    if let Ok(parsed) = url::Url::parse(url) {
        found.extend(parsed.password().map(str::to_owned));
        found.extend(
            parsed
                .query_pairs()
                .filter(|(key, _)| key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("pass"))
                .map(|(_, value)| value.into_owned()),
        );
    }
    let decoded: Vec<String> = found.iter().map(|p| percent_decode(p)).collect();
    found.extend(decoded);
    found.retain(|p| !p.is_empty());
    found.sort_by_key(|p| std::cmp::Reverse(p.len()));
    found.dedup();
    found
}

/// `%XX` escapes decoded (invalid ones kept as written).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
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
    use super::{redact, scrub};

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(redact("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(
            redact("mysql://root:p%40ss@db/x?ssl-mode=off"),
            "mysql://root:***@db/x?ssl-mode=off"
        );
        assert_eq!(
            redact("postgres://db/app?user=a&password=hunter2"),
            "postgres://db/app?user=a&password=***"
        );
        assert_eq!(redact("sqlite://app.db"), "sqlite://app.db");
        assert_eq!(
            redact("postgres://u:p@ss@host/db"),
            "postgres://u:***@host/db"
        );
    }

    /// Every byte that is not unreserved, as `%XX`.
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    /// Generated URLs (users, passwords of any characters, percent-encoded
    /// or not, in the user-info part, in `password=` / `pass=`, one or two
    /// at once, other parameters around them): neither form of any password
    /// is left in the redacted URL or a scrubbed message, and the URL
    /// standard reads the rest of the redacted URL as it read the original.
    #[test]
    fn redaction_holds_for_generated_urls() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let alphabet: Vec<char> = "aZ09-_.~!$&'()*+,;=:@/?#% é€\\\"".chars().collect();
        for case in 0..20_000 {
            let mut password = || {
                let mut p = String::from("Pw");
                for _ in 0..1 + next(10) {
                    p.push(alphabet[next(alphabet.len())]);
                }
                p
            };
            let (first, second) = (password(), password());
            let user = ["app", "u", "x%20y"][next(3)];
            let host = ["db", "10.0.0.7:5432", "[::1]:3306"][next(3)];
            let key = ["password", "pass", "Password"][next(3)];
            let in_userinfo = next(3) != 0;
            let in_query = !in_userinfo || next(2) == 0;
            let mut url = format!("{}://{user}", ["postgres", "mysql"][next(2)]);
            if in_userinfo {
                url += &format!(":{}", encode(&first));
            }
            url += &format!("@{host}/app?sslmode=off");
            if in_query {
                url += &format!("&{key}={}&application_name=svc", encode(&second));
            }
            let redacted = redact(&url);
            let message = format!("cannot connect to {url}: {first} and {second} refused");
            let scrubbed = scrub(&message, &url);
            let secrets = [
                (in_userinfo, &first),
                (in_query, &second),
            ];
            for (present, secret) in secrets {
                if !present {
                    continue;
                }
                for form in [secret.clone(), encode(secret)] {
                    assert!(!redacted.contains(&form), "case {case}: {url} -> {redacted}");
                    assert!(!scrubbed.contains(&form), "case {case}: {message} -> {scrubbed}");
                }
            }
            let (Ok(before), Ok(after)) = (url::Url::parse(&url), url::Url::parse(&redacted)) else {
                panic!("case {case}: {url} or {redacted} does not parse");
            };
            assert_eq!(before.username(), after.username(), "case {case}");
            assert_eq!(before.host_str(), after.host_str(), "case {case}");
            assert_eq!(before.port(), after.port(), "case {case}");
            assert_eq!(before.path(), after.path(), "case {case}");
            let others = |u: &url::Url| -> Vec<(String, String)> {
                u.query_pairs()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("password") && !k.eq_ignore_ascii_case("pass"))
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            };
            assert_eq!(others(&before), others(&after), "case {case}");
            assert_eq!(after.password().is_some(), in_userinfo, "case {case}");
        }
    }

    #[test]
    fn scrubs_messages() {
        let url = "postgres://app:hunter2@db/app";
        assert_eq!(
            scrub("cannot use hunter2 at postgres://app:hunter2@db/app", url),
            "cannot use *** at postgres://app:***@db/app"
        );
        // Two passwords, one percent-encoded: each hidden, as written and decoded.
        let url = "postgres://app:p%40ss1@db/app?password=other2";
        assert_eq!(
            redact(url),
            "postgres://app:***@db/app?password=***"
        );
        assert_eq!(
            scrub("p@ss1 p%40ss1 other2 at db", url),
            "*** *** *** at db"
        );
    }
}

