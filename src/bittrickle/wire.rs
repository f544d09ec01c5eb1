//! The BitTrickle client ↔ server codec: requests and replies as UDP datagram text.
//!
//! Pure: no sockets, no clocks. A request is whitespace-separated tokens (the server splits on any
//! run of ASCII whitespace) and is valid only when its first token is a known command and its
//! token count is exact; the server drops anything else without a reply, so [`parse`] only says
//! *why* it refused, for the debug log. Replies are the original server's exact sentences.
//!
//! A file name longer than [`MAX_NAME`] bytes is malformed too: every reply that echoes a name
//! must fit one datagram, and no file system the course uses holds a longer name. The original
//! accepted a 65,500-byte name and then could not send its reply (EMSGSIZE); here such a request
//! gets the protocol's answer to anything malformed, which is none, and changes nothing.

use std::fmt;

/// The longest file name a request may carry, in bytes (Linux's NAME_MAX). The longest reply
/// that echoes one (`No active peers found with file '…' or …`) is then far below a datagram.
pub const MAX_NAME: usize = 255;

/// One request datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Login {
        user: String,
        password: String,
        tcp_port: u16,
    },
    Heartbeat {
        user: String,
    },
    Lap {
        user: String,
    },
    Pub {
        user: String,
        file: String,
    },
    Unp {
        user: String,
        file: String,
    },
    Lpf {
        user: String,
    },
    Sch {
        user: String,
        substring: String,
    },
    Get {
        user: String,
        file: String,
    },
}

impl Request {
    /// The user every request names.
    pub fn user(&self) -> &str {
        match self {
            Request::Login { user, .. }
            | Request::Heartbeat { user }
            | Request::Lap { user }
            | Request::Pub { user, .. }
            | Request::Unp { user, .. }
            | Request::Lpf { user }
            | Request::Sch { user, .. }
            | Request::Get { user, .. } => user,
        }
    }
}

/// Why a datagram is not a request (never sent back: malformed requests get no reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    NotUtf8,
    Empty,
    UnknownCommand(String),
    WrongTokenCount {
        command: &'static str,
        expected: usize,
        got: usize,
    },
    BadPort(String),
    NameTooLong(usize),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::NotUtf8 => write!(f, "the datagram is not UTF-8"),
            WireError::Empty => write!(f, "the datagram holds no tokens"),
            WireError::UnknownCommand(c) => write!(f, "'{c}' is not a command"),
            WireError::WrongTokenCount {
                command,
                expected,
                got,
            } => write!(f, "'{command}' needs {expected} tokens but got {got}"),
            WireError::BadPort(p) => write!(f, "'{p}' is not a TCP port"),
            WireError::NameTooLong(n) => {
                write!(f, "a {n}-byte file name is longer than {MAX_NAME} bytes")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// Parses one request datagram.
pub fn parse(bytes: &[u8]) -> Result<Request, WireError> {
    let text = std::str::from_utf8(bytes).map_err(|_| WireError::NotUtf8)?;
    let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
    let Some(&first) = tokens.first() else {
        return Err(WireError::Empty);
    };
    let (command, expected): (&'static str, usize) = match first {
        "login" => ("login", 4),
        "heartbeat" => ("heartbeat", 2),
        "lap" => ("lap", 2),
        "pub" => ("pub", 3),
        "unp" => ("unp", 3),
        "lpf" => ("lpf", 2),
        "sch" => ("sch", 3),
        "get" => ("get", 3),
        other => return Err(WireError::UnknownCommand(other.to_string())),
    };
    if tokens.len() != expected {
        return Err(WireError::WrongTokenCount {
            command,
            expected,
            got: tokens.len(),
        });
    }
    if matches!(command, "pub" | "unp" | "get") && tokens[2].len() > MAX_NAME {
        return Err(WireError::NameTooLong(tokens[2].len()));
    }
    let user = tokens[1].to_string();
    let arg = || tokens[2].to_string();
    Ok(match command {
        "login" => Request::Login {
            user,
            password: arg(),
            tcp_port: tokens[3]
                .parse()
                .map_err(|_| WireError::BadPort(tokens[3].to_string()))?,
        },
        "heartbeat" => Request::Heartbeat { user },
        "lap" => Request::Lap { user },
        "pub" => Request::Pub { user, file: arg() },
        "unp" => Request::Unp { user, file: arg() },
        "lpf" => Request::Lpf { user },
        "sch" => Request::Sch {
            user,
            substring: arg(),
        },
        _ => Request::Get { user, file: arg() },
    })
}

/// The request's datagram: tokens joined by single spaces, no terminator.
pub fn encode(request: &Request) -> Vec<u8> {
    let text = match request {
        Request::Login {
            user,
            password,
            tcp_port,
        } => format!("login {user} {password} {tcp_port}"),
        Request::Heartbeat { user } => format!("heartbeat {user}"),
        Request::Lap { user } => format!("lap {user}"),
        Request::Pub { user, file } => format!("pub {user} {file}"),
        Request::Unp { user, file } => format!("unp {user} {file}"),
        Request::Lpf { user } => format!("lpf {user}"),
        Request::Sch { user, substring } => format!("sch {user} {substring}"),
        Request::Get { user, file } => format!("get {user} {file}"),
    };
    text.into_bytes()
}

/// A request's text for a trace: as sent, except that a `login`'s password shows as `***` (trace
/// files are shared with whoever draws the diagram).
pub fn traced_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
    match tokens.as_slice() {
        ["login", user, _password, port] => format!("login {user} *** {port}"),
        _ => text.into_owned(),
    }
}

/// The login reply that lets a client in.
pub const WELCOME: &str = "Welcome to BitTrickle!";

/// One reply datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    UnknownUser,
    WrongPassword,
    AlreadyActive,
    Welcome,
    ActivePeers(Vec<String>),
    Published(String),
    AlreadyPublished(String),
    Unpublished(String),
    UnpublishFailed(String),
    PublishedFiles(Vec<String>),
    FoundFiles(Vec<String>),
    /// `200 {ip} {tcp_port}`: where to download from (the port as the publisher logged in with).
    PeerAddress {
        ip: String,
        port: u16,
    },
    GetOwnFile(String),
    NoActivePublisher(String),
    FileNotFound(String),
}

/// `{n} {what}:\n` + names joined by `\n`, or `empty` when there are none.
fn listing(names: &[String], what: &str, empty: &str) -> String {
    if names.is_empty() {
        empty.to_string()
    } else {
        format!("{} {what}:\n{}", names.len(), names.join("\n"))
    }
}

/// The reply's exact text.
pub fn encode_reply(reply: &Reply) -> String {
    match reply {
        Reply::UnknownUser => "Authentication failed: Unknown username ❌.".into(),
        Reply::WrongPassword => {
            "Authentication failed: Incorrect password. Please try again ❌.".into()
        }
        Reply::AlreadyActive => "Authentication failed: User is already active ❌.".into(),
        Reply::Welcome => WELCOME.into(),
        Reply::ActivePeers(p) => listing(p, "active peer(s)", "No active peers available ❌."),
        Reply::Published(f) => format!("File '{f}' published successfully."),
        Reply::AlreadyPublished(f) => format!("File '{f}' is already published by you."),
        Reply::Unpublished(f) => format!("File '{f}' unpublished successfully."),
        Reply::UnpublishFailed(f) => format!(
            "File '{f}' unpublication failed. File doesn't exist or is already unpublished ❌."
        ),
        Reply::PublishedFiles(f) => listing(f, "file(s) published", "No files published ❌."),
        Reply::FoundFiles(f) => listing(f, "file(s) found", "No files found ❌."),
        Reply::PeerAddress { ip, port } => format!("200 {ip} {port}"),
        Reply::GetOwnFile(f) => format!("Error you already published this file '{f}' ❌."),
        Reply::NoActivePublisher(f) => format!(
            "No active peers found with file '{f}' or you already have the file published ❌."
        ),
        Reply::FileNotFound(f) => format!("File '{f}' not found in published files ❌."),
    }
}

/// The `(ip, port)` of a `200 {ip} {port}` reply to `get`, if `text` is one.
pub fn parse_peer_address(text: &str) -> Option<(String, u16)> {
    match text.split_ascii_whitespace().collect::<Vec<_>>().as_slice() {
        ["200", ip, port] => Some((ip.to_string(), port.parse().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn every_request_round_trips_byte_exact() {
        let cases = [
            (
                Request::Login {
                    user: s("hans"),
                    password: s("falcon*solo"),
                    tcp_port: 5001,
                },
                "login hans falcon*solo 5001",
            ),
            (Request::Heartbeat { user: s("hans") }, "heartbeat hans"),
            (Request::Lap { user: s("hans") }, "lap hans"),
            (
                Request::Pub {
                    user: s("hans"),
                    file: s("a.txt"),
                },
                "pub hans a.txt",
            ),
            (
                Request::Unp {
                    user: s("hans"),
                    file: s("a.txt"),
                },
                "unp hans a.txt",
            ),
            (Request::Lpf { user: s("hans") }, "lpf hans"),
            (
                Request::Sch {
                    user: s("hans"),
                    substring: s("txt"),
                },
                "sch hans txt",
            ),
            (
                Request::Get {
                    user: s("hans"),
                    file: s("a.txt"),
                },
                "get hans a.txt",
            ),
        ];
        for (req, text) in cases {
            assert_eq!(encode(&req), text.as_bytes());
            assert_eq!(parse(text.as_bytes()).unwrap(), req);
        }
    }

    #[test]
    fn file_names_longer_than_name_max_are_malformed() {
        let ok = "a".repeat(MAX_NAME);
        for command in ["pub", "unp", "get"] {
            assert!(parse(format!("{command} hans {ok}").as_bytes()).is_ok());
            let long = format!("{command} hans {ok}b");
            assert_eq!(
                parse(long.as_bytes()),
                Err(WireError::NameTooLong(MAX_NAME + 1))
            );
        }
        let reply = encode_reply(&Reply::NoActivePublisher(ok));
        assert!(reply.len() < 1024, "{}", reply.len());
    }

    #[test]
    fn traces_show_requests_as_sent_but_never_a_password() {
        assert_eq!(
            traced_text(b"login hans falcon*solo 5001"),
            "login hans *** 5001"
        );
        assert_eq!(traced_text(b"pub hans a.txt"), "pub hans a.txt");
        assert_eq!(traced_text(b"\xff lap"), "\u{FFFD} lap");
    }

    #[test]
    fn any_run_of_ascii_whitespace_separates_tokens() {
        assert_eq!(
            parse(b"  pub\thans \r\n a.txt\n").unwrap(),
            Request::Pub {
                user: s("hans"),
                file: s("a.txt")
            }
        );
    }

    #[test]
    fn malformed_shapes_are_refused() {
        assert_eq!(parse(b""), Err(WireError::Empty));
        assert_eq!(parse(b" \t\n"), Err(WireError::Empty));
        assert_eq!(parse(b"lap \xff\xfe"), Err(WireError::NotUtf8));
        assert_eq!(parse(b"LAP hans"), Err(WireError::UnknownCommand(s("LAP"))));
        assert_eq!(parse(b"xit hans"), Err(WireError::UnknownCommand(s("xit"))));
        assert_eq!(
            parse(b"login hans falcon*solo abc"),
            Err(WireError::BadPort(s("abc")))
        );
        assert_eq!(
            parse(b"login hans falcon*solo 70000"),
            Err(WireError::BadPort(s("70000")))
        );
        assert_eq!(
            parse(b"login hans falcon*solo -1"),
            Err(WireError::BadPort(s("-1")))
        );
        for (text, command, expected, got) in [
            ("login hans falcon*solo", "login", 4, 3),
            ("login hans falcon*solo 5 x", "login", 4, 5),
            ("heartbeat", "heartbeat", 2, 1),
            ("heartbeat hans extra", "heartbeat", 2, 3),
            ("lap", "lap", 2, 1),
            ("lap hans x", "lap", 2, 3),
            ("pub hans", "pub", 3, 2),
            ("pub hans a b", "pub", 3, 4),
            ("unp hans", "unp", 3, 2),
            ("lpf", "lpf", 2, 1),
            ("lpf hans x", "lpf", 2, 3),
            ("sch hans", "sch", 3, 2),
            ("sch hans a b", "sch", 3, 4),
            ("get hans", "get", 3, 2),
            ("get hans a b", "get", 3, 4),
        ] {
            assert_eq!(
                parse(text.as_bytes()),
                Err(WireError::WrongTokenCount {
                    command,
                    expected,
                    got
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn replies_are_the_original_sentences() {
        let f = || s("a.txt");
        let cases = [
            (Reply::UnknownUser, "Authentication failed: Unknown username ❌."),
            (
                Reply::WrongPassword,
                "Authentication failed: Incorrect password. Please try again ❌.",
            ),
            (
                Reply::AlreadyActive,
                "Authentication failed: User is already active ❌.",
            ),
            (Reply::Welcome, "Welcome to BitTrickle!"),
            (Reply::ActivePeers(vec![]), "No active peers available ❌."),
            (
                Reply::ActivePeers(vec![s("yoda"), s("leia")]),
                "2 active peer(s):\nyoda\nleia",
            ),
            (Reply::Published(f()), "File 'a.txt' published successfully."),
            (
                Reply::AlreadyPublished(f()),
                "File 'a.txt' is already published by you.",
            ),
            (
                Reply::Unpublished(f()),
                "File 'a.txt' unpublished successfully.",
            ),
            (
                Reply::UnpublishFailed(f()),
                "File 'a.txt' unpublication failed. File doesn't exist or is already unpublished ❌.",
            ),
            (Reply::PublishedFiles(vec![]), "No files published ❌."),
            (
                Reply::PublishedFiles(vec![f()]),
                "1 file(s) published:\na.txt",
            ),
            (Reply::FoundFiles(vec![]), "No files found ❌."),
            (
                Reply::FoundFiles(vec![f(), s("b.txt")]),
                "2 file(s) found:\na.txt\nb.txt",
            ),
            (
                Reply::PeerAddress {
                    ip: s("127.0.0.1"),
                    port: 5001,
                },
                "200 127.0.0.1 5001",
            ),
            (
                Reply::GetOwnFile(f()),
                "Error you already published this file 'a.txt' ❌.",
            ),
            (
                Reply::NoActivePublisher(f()),
                "No active peers found with file 'a.txt' or you already have the file published ❌.",
            ),
            (
                Reply::FileNotFound(f()),
                "File 'a.txt' not found in published files ❌.",
            ),
        ];
        for (reply, text) in cases {
            assert_eq!(encode_reply(&reply), text);
        }
        assert!(encode_reply(&Reply::UnknownUser).contains('\u{274C}'));
    }

    #[test]
    fn only_a_well_formed_200_reply_is_a_peer_address() {
        assert_eq!(
            parse_peer_address("200 127.0.0.1 5001"),
            Some((s("127.0.0.1"), 5001))
        );
        assert_eq!(parse_peer_address("200 127.0.0.1"), None);
        assert_eq!(parse_peer_address("200 127.0.0.1 port"), None);
        assert_eq!(
            parse_peer_address("File 'x' not found in published files ❌."),
            None
        );
    }
}
