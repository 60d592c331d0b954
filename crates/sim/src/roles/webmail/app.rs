//! The webmail application of the `backend-crash` scenarios, modelled on
//! the RoundCube actions of the backend fault-tolerance paper (§6.2): the
//! request lists of Action 1 (login screen, 4 GETs x 30) and Action 2 (an
//! e-mail session, 9 GETs + 2 POSTs x 3), the session state they change,
//! and deterministic responses computed from path and session only. The
//! one exception is `/status.php`, whose body starts with the name of the
//! machine that answered: an *unforeseen* non-determinism (the tag table
//! calls it deterministic), used to provoke the absorb-and-compare reset.
//! Sending a mail stores it on the aux mail server ([`aux_request`]); the
//! server's answer (the mail's number) is part of the response.

use ftsplice_recovery::tags::{TagRuleSpec, TagTable, Tags};

/// Which user action a client repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Displaying the login screen: 4 GETs, repeated 30 times.
    Action1,
    /// Log in, read the inbox, compose and send a mail, log out: 9 GETs
    /// and 2 POSTs, repeated 3 times.
    Action2,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Action1 => "action1",
            Action::Action2 => "action2",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "action1" => Some(Action::Action1),
            "action2" => Some(Action::Action2),
            _ => None,
        }
    }
}

/// One HTTP request of a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub path: &'static str,
    pub body: Vec<u8>,
}

impl Request {
    fn get(path: &'static str) -> Request {
        Request {
            method: "GET",
            path,
            body: Vec::new(),
        }
    }

    fn post(path: &'static str, body: Vec<u8>) -> Request {
        Request {
            method: "POST",
            path,
            body,
        }
    }

    /// The request as a browser would send it.
    pub fn bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: mail.example\r\nUser-Agent: ftsplice-sim\r\nAccept: */*\r\n",
            self.method, self.path
        );
        if self.method == "POST" {
            head.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                self.body.len()
            ));
        }
        head.push_str("\r\n");
        let mut b = head.into_bytes();
        b.extend_from_slice(&self.body);
        b
    }
}

/// The requests of `action`, in order. With `status_at = Some(i)` request
/// `i` (0-based) is replaced by the non-deterministic `GET /status.php`.
pub fn requests(action: Action, status_at: Option<usize>) -> Vec<Request> {
    let mut v = Vec::new();
    match action {
        Action::Action1 => {
            for _ in 0..30 {
                v.push(Request::get("/index.php"));
                v.push(Request::get("/skins/default/common.css"));
                v.push(Request::get("/program/js/common.js"));
                v.push(Request::get("/program/js/app.js"));
            }
        }
        Action::Action2 => {
            for s in 0..3u8 {
                v.push(Request::get("/index.php"));
                v.push(Request::post(
                    "/login.php",
                    b"_user=alice&_pass=secret&_timezone=1".to_vec(),
                ));
                v.push(Request::get("/mail.php"));
                v.push(Request::get("/list.php"));
                v.push(Request::get("/compose.php"));
                v.push(Request::get("/program/js/editor.js"));
                let mut body =
                    format!("_to=bob%40example.org&_subject=report+{s}&_body=").into_bytes();
                body.extend((0..3000u32).map(|i| b'a' + ((i * 7 + u32::from(s)) % 26) as u8));
                v.push(Request::post("/send.php", body));
                v.push(Request::get("/mail.php"));
                v.push(Request::get("/list.php"));
                v.push(Request::get("/logout.php"));
                v.push(Request::get("/index.php"));
            }
        }
    }
    if let Some(r) = status_at.and_then(|i| v.get_mut(i)) {
        *r = Request::get("/status.php");
    }
    v
}

/// The logger's tag table for this application (paper §3.1): static files
/// and views are deterministic and read-only; logging in and out, composing
/// (allocates a draft) and sending are deterministic updates.
/// `/status.php` is (wrongly) believed deterministic.
pub fn tag_table() -> TagTable {
    let rule = |method: &str, path: &str, read_only: bool, idempotent: bool| TagRuleSpec {
        method: method.into(),
        path: path.into(),
        deterministic: true,
        read_only,
        idempotent,
    };
    let specs = [
        rule("GET", "/logout.php", false, true),
        rule("GET", "/compose.php", false, false),
        rule("POST", "/*", false, false),
        rule("GET", "/*", true, true),
    ];
    match TagTable::new(&specs, Tags::CONSERVATIVE) {
        Ok(t) => t,
        // The rules above are constants that validate.
        Err(_) => TagTable::conservative(),
    }
}

/// One user's session on a backend.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub logins: u32,
    pub drafts: u32,
    pub sent: u32,
}

impl Session {
    /// The record pushed to the alternate after each transaction.
    pub fn record(&self) -> Vec<u8> {
        format!(
            "{}\n{}\n{}\n{}",
            self.user, self.logins, self.drafts, self.sent
        )
        .into_bytes()
    }

    /// Restores a session from [`Session::record`]'s output (garbage gives
    /// an empty session).
    pub fn from_record(r: &[u8]) -> Session {
        let s = String::from_utf8_lossy(r);
        let mut it = s.split('\n');
        let user = it.next().unwrap_or_default().to_string();
        let mut num = || it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        Session {
            user,
            logins: num(),
            drafts: num(),
            sent: num(),
        }
    }
}

/// Processing time of a request on the backend (PHP scripts cost more
/// than static files).
pub fn service_us(path: &str) -> u64 {
    match path {
        "/login.php" | "/send.php" => 6_000,
        p if p.ends_with(".php") => 2_500,
        _ => 300,
    }
}

/// Body filler of `len` bytes, a function of `seed` text only.
fn filler(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut line = 0u32;
    while out.len() < len {
        out.extend_from_slice(format!("<p>{seed} line {line}</p>\n").as_bytes());
        line += 1;
    }
    out.truncate(len);
    out
}

fn ok(ctype: &str, body: Vec<u8>) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(&body);
    r
}

/// The aux request `req` makes while it is processed, if any: sending a
/// mail appends it to the mail store.
pub fn aux_request(session: &Session, method: &str, path: &str, body: &[u8]) -> Option<Vec<u8>> {
    (method == "POST" && path == "/send.php").then(|| {
        let head = String::from_utf8_lossy(&body[..body.len().min(48)]);
        format!(
            "APPEND Sent {} bytes from {}: {head}",
            body.len(),
            session.user
        )
        .into_bytes()
    })
}

/// What the mail store answers to the `n`-th mail it stores.
pub fn aux_answer(n: usize) -> Vec<u8> {
    format!("OK [APPENDUID {n}]").into_bytes()
}

/// Runs `req` against `session` on the machine called `server`, with the
/// aux server's answer `aux` to [`aux_request`]; returns the response bytes.
pub fn handle(
    session: &mut Session,
    server: &str,
    method: &str,
    path: &str,
    body: &[u8],
    aux: &[u8],
) -> Vec<u8> {
    let who = format!(
        "{} logins={} drafts={} sent={}",
        session.user, session.logins, session.drafts, session.sent
    );
    match (method, path) {
        ("GET", "/index.php") => ok("text/html", filler("login form", 5_200)),
        ("GET", "/skins/default/common.css") => ok("text/css", filler("css", 14_000)),
        ("GET", "/program/js/common.js") => ok("text/javascript", filler("common.js", 22_000)),
        ("GET", "/program/js/app.js") => ok("text/javascript", filler("app.js", 48_000)),
        ("GET", "/program/js/editor.js") => ok("text/javascript", filler("editor.js", 30_000)),
        ("POST", "/login.php") => {
            let user = String::from_utf8_lossy(body)
                .split('&')
                .find_map(|kv| kv.strip_prefix("_user=").map(str::to_string))
                .unwrap_or_default();
            session.user = user;
            session.logins += 1;
            format!(
                "HTTP/1.1 302 Found\r\nSet-Cookie: sid={}-{}\r\nLocation: /mail.php\r\nContent-Length: 0\r\n\r\n",
                session.user, session.logins
            )
            .into_bytes()
        }
        ("GET", "/mail.php") => ok("text/html", filler(&format!("inbox of {who}"), 9_000)),
        ("GET", "/list.php") => ok("text/html", filler(&format!("list of {who}"), 4_000)),
        ("GET", "/compose.php") => {
            session.drafts += 1;
            ok(
                "text/html",
                filler(&format!("compose draft {} {who}", session.drafts), 7_000),
            )
        }
        ("POST", "/send.php") => {
            session.sent += 1;
            ok(
                "text/html",
                filler(
                    &format!(
                        "sent #{} of {} bytes ({}) {who}",
                        session.sent,
                        body.len(),
                        String::from_utf8_lossy(aux)
                    ),
                    600,
                ),
            )
        }
        ("GET", "/logout.php") => {
            session.user.clear();
            ok("text/html", filler("logged out", 300))
        }
        ("GET", "/status.php") => {
            let mut b = format!("served-by={server}\n").into_bytes();
            b.extend(filler("status", 6_000));
            ok("text/plain", b)
        }
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    }
}

/// What a client must receive for `reqs` from a backend called `server`
/// that never fails: the whole response stream and where each response ends.
pub fn reference(reqs: &[Request], server: &str) -> (Vec<u8>, Vec<usize>) {
    let mut s = Session::default();
    let (mut out, mut ends, mut mails) = (Vec::new(), Vec::new(), 0);
    for r in reqs {
        let aux = match aux_request(&s, r.method, r.path, &r.body) {
            Some(_) => {
                mails += 1;
                aux_answer(mails)
            }
            None => Vec::new(),
        };
        out.extend(handle(&mut s, server, r.method, r.path, &r.body, &aux));
        ends.push(out.len());
    }
    (out, ends)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftsplice_recovery::http::Transactionalizer;
    use ftsplice_recovery::log::Direction;
    use std::sync::Arc;

    #[test]
    fn actions_have_the_papers_request_mix() {
        let a1 = requests(Action::Action1, None);
        assert_eq!(a1.len(), 120);
        let a2 = requests(Action::Action2, None);
        assert_eq!(a2.len(), 33);
        assert_eq!(a2.iter().filter(|r| r.method == "POST").count(), 6);
        assert_eq!(requests(Action::Action2, Some(3))[3].path, "/status.php");
    }

    #[test]
    fn streams_parse_into_one_transaction_per_request() {
        let reqs = requests(Action::Action2, Some(5));
        let (resp, ends) = reference(&reqs, "b1");
        let mut t = Transactionalizer::new(Arc::new(tag_table()));
        for r in &reqs {
            t.feed(Direction::ClientToServer, &r.bytes());
        }
        t.feed(Direction::ServerToClient, &resp);
        assert_eq!(t.error(), None);
        assert_eq!(t.last_complete(), reqs.len() as u64);
        assert_eq!(
            t.ends_of(33).map(|e| e.1),
            Some(*ends.last().unwrap_or(&0) as u64)
        );
        // Tags: logins are updates, views read-only.
        assert!(!t.get(2).unwrap().tags.read_only);
        assert!(t.get(3).unwrap().tags.read_only);
    }

    #[test]
    fn responses_depend_on_session_and_only_status_on_the_server() {
        let reqs = requests(Action::Action2, None);
        assert_eq!(reference(&reqs, "b1"), reference(&reqs, "b2"));
        let nd = requests(Action::Action2, Some(0));
        assert_ne!(reference(&nd, "b1").0, reference(&nd, "b2").0);
        let mut s = Session::default();
        handle(&mut s, "b1", "POST", "/login.php", b"_user=carol", b"");
        assert_eq!(aux_request(&s, "GET", "/mail.php", b""), None);
        assert!(aux_request(&s, "POST", "/send.php", b"x").is_some());
        let a = handle(&mut s, "b1", "POST", "/send.php", b"x", &aux_answer(7));
        assert!(String::from_utf8_lossy(&a).contains("APPENDUID 7"));
        assert_eq!(Session::from_record(&s.record()), s);
        assert_eq!(s.sent, 1);
        assert_eq!(
            Session::from_record(b"\xff"),
            Session {
                user: "\u{fffd}".into(),
                ..Session::default()
            }
        );
    }
}
