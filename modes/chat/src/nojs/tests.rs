//! Router tests of the chat without JavaScript: join, the streamed page, forms, leaving.

#![allow(clippy::unwrap_used)]

use onionhost_sdk::TabEvent;
use onionhost_sdk::axum::Router;
use onionhost_sdk::axum::http::StatusCode;

use onionhost_sdk::http::Visitor;

use crate::test_support::{Streamed, get, post_form, post_form_as, see_other, tab, text};

/// Joins without JavaScript; returns the session's page path (`/nojs/<token>`).
async fn join(router: &Router, name: &str) -> String {
    let response = post_form(router, "/nojs/join", &[("name", name)]).await;
    let location = see_other(&response);
    let token = location.strip_prefix("/nojs/").unwrap();
    assert_eq!(token.len(), 32, "{location}");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{location}");
    location
}

async fn open(router: &Router, page: &str) -> Streamed {
    Streamed::new(get(router, page).await)
}

/// Reads a session's page up to the end of its first list of who is here (the last line of
/// the page's start): the forms, the lines shown again, then that list.
async fn read_start(page: &mut Streamed) -> String {
    let mut start = page.read_until("<li class=\"roster\">").await;
    start.push_str(&page.read_until("</li>").await);
    start
}

#[tokio::test]
async fn a_member_without_javascript_reads_the_stream_and_posts() {
    let tab = tab("");
    let ann = join(&tab.router, "ann").await;
    let bo = join(&tab.router, "bo").await;
    let mut page = open(&tab.router, &ann).await;
    let head = read_start(&mut page).await;
    assert!(
        head.contains("You are <strong><bdi>ann</bdi></strong>"),
        "{head}"
    );
    assert!(
        head.contains("<strong>Here now (2): </strong><bdi>ann</bdi>, <bdi>bo</bdi>"),
        "{head}"
    );
    assert!(head.contains(&format!("action=\"{ann}/send\"")), "{head}");
    // Ann saw Bo join, since she was there first.
    page.read_until("<bdi>bo</bdi> joined").await;

    let response = post_form(&tab.router, &format!("{bo}/send"), &[("text", "hi ann")]).await;
    assert_eq!(see_other(&response), bo);
    page.read_until(
        "<span class=\"from\">bo</span> <span class=\"text\" dir=\"auto\">hi ann</span>",
    )
    .await;

    let response = post_form(&tab.router, &format!("{bo}/rename"), &[("name", "Bob")]).await;
    assert_eq!(see_other(&response), bo);
    page.read_until("<bdi>bo</bdi> is now <bdi>Bob</bdi>").await;

    let response = post_form(&tab.router, &format!("{bo}/leave"), &[]).await;
    assert_eq!(see_other(&response), "/nojs?left");
    page.read_until("<bdi>Bob</bdi> left").await;
    assert!(!page.ended);
}

/// Regression (issue 12): the page without JavaScript had no times, where the live page has
/// them. They count from the join (`+m:ss`): the host's clock is never shown.
#[tokio::test]
async fn lines_without_javascript_have_times_since_the_join() {
    let tab = tab("");
    let ann = join(&tab.router, "ann").await;
    let mut page = open(&tab.router, &ann).await;
    page.read_until("<ol class=\"log nojs-log\">").await;
    let bo = join(&tab.router, "bo").await;
    post_form(&tab.router, &format!("{bo}/send"), &[("text", "hi")]).await;
    let seen = page
        .read_until("<span class=\"text\" dir=\"auto\">hi</span>")
        .await;
    let line = seen
        .lines()
        .find(|line| line.contains("class=\"msg\""))
        .unwrap();
    assert!(
        line.starts_with("<li class=\"msg\"><time>+0:0"),
        "a time since the join: {line}"
    );
    assert!(seen.contains("<li class=\"notice\"><time>+0:0"), "{seen}");
}

#[test]
fn times_since_the_join_read_as_minutes_and_seconds() {
    use std::time::Duration;
    let cases = [
        (0, "+0:00"),
        (7, "+0:07"),
        (187, "+3:07"),
        (3729, "+1:02:09"),
    ];
    for (seconds, text) in cases {
        let line = super::session::Line {
            since_join: Duration::from_secs(seconds),
            event: std::sync::Arc::new(crate::room::RoomEvent::new(
                crate::protocol::ServerMessage::Joined {
                    name: "ann".to_owned(),
                },
            )),
        };
        let html = super::render::render_lines(&[line]);
        assert!(html.contains(&format!("<time>{text}</time>")), "{html}");
    }
}

/// Regression (issue 12): the list of who is here was frozen at page load. Each change
/// streams a new list, which the style sheet shows in place of the old one.
#[tokio::test]
async fn the_people_list_is_streamed_again_when_someone_comes_or_goes() {
    let tab = tab("");
    let ann = join(&tab.router, "ann").await;
    let mut page = open(&tab.router, &ann).await;
    page.read_until("<strong>Here now (1): </strong><bdi>ann</bdi></span></li>")
        .await;
    let bo = join(&tab.router, "bo").await;
    page.read_until("<strong>Here now (2): </strong><bdi>ann</bdi>, <bdi>bo</bdi></span></li>")
        .await;
    post_form(&tab.router, &format!("{bo}/leave"), &[]).await;
    page.read_until("<bdi>bo</bdi> left").await;
    page.read_until("<strong>Here now (1): </strong><bdi>ann</bdi></span></li>")
        .await;
    // The style sheet shows the newest list only.
    let css = crate::page::STYLE.bytes();
    let css = std::str::from_utf8(css).unwrap();
    assert!(css.contains(".nojs-log .roster:has(~ .roster)"), "{css}");
}

/// Regression (issue 12): after Leave the visitor landed on the join form with no word of
/// having left.
#[tokio::test]
async fn leaving_lands_on_the_join_page_which_says_so() {
    let tab = tab("");
    let ann = join(&tab.router, "ann").await;
    let response = post_form(&tab.router, &format!("{ann}/leave"), &[]).await;
    let location = see_other(&response);
    let page = text(get(&tab.router, &location).await).await;
    assert!(page.contains("You left the chat."), "{page}");
    assert!(page.contains("action=\"/nojs/join\""), "{page}");
    let plain = text(get(&tab.router, "/nojs").await).await;
    assert!(!plain.contains("You left"), "{plain}");
}

/// Regression (issue 12): Leave looked like Send. Send is the primary action; Rename and
/// Leave are secondary.
#[tokio::test]
async fn send_is_primary_and_rename_and_leave_are_secondary() {
    let tab = tab("");
    let ann = join(&tab.router, "ann").await;
    let mut page = open(&tab.router, &ann).await;
    let head = page.read_until("<ol class=\"log nojs-log\">").await;
    assert!(
        head.contains("<button type=\"submit\">Send</button>"),
        "{head}"
    );
    assert!(
        head.contains("<button class=\"secondary\" type=\"submit\">Rename</button>"),
        "{head}"
    );
    assert!(
        head.contains("<button class=\"secondary\" type=\"submit\">Leave</button>"),
        "{head}"
    );
}

#[tokio::test]
async fn a_reloaded_page_shows_what_the_member_saw_since_joining_and_streams_on() {
    let tab = tab("");
    let ann = join(&tab.router, "ann").await;
    let response = post_form(
        &tab.router,
        &format!("{ann}/send"),
        &[("text", "early-bird")],
    )
    .await;
    assert_eq!(see_other(&response), ann);
    let mut page = open(&tab.router, &ann).await;
    page.read_until("early-bird</span>").await;
    let bo = join(&tab.router, "bo").await;
    page.read_until("<bdi>bo</bdi> joined").await;
    // Bo joined after "early-bird": no history for newcomers.
    let mut bo_page = open(&tab.router, &bo).await;
    let head = bo_page.read_until("<ol class=\"log nojs-log\">").await;
    assert!(!head.contains("early-bird"));
    post_form(&tab.router, &format!("{ann}/send"), &[("text", "second")]).await;
    let seen = bo_page.read_until("second</span>").await;
    assert!(!seen.contains("early-bird"), "{seen}");
}

#[tokio::test]
async fn a_reloaded_page_starts_with_a_bounded_replay() {
    let tab = tab("[rate_limit]\nburst = 1000\nmessages_per_minute = 60000");
    let ann = join(&tab.router, "ann").await;
    // A hundred of the longest messages, each four times as long once escaped.
    let long = "<".repeat(4096);
    for n in 0..100 {
        let text = format!("m{n:03}{}", &long[4..]);
        let response = post_form(&tab.router, &format!("{ann}/send"), &[("text", &text)]).await;
        assert_eq!(see_other(&response), ann);
    }
    let mut page = open(&tab.router, &ann).await;
    page.read_until("m099").await;
    drop(page);
    let mut page = open(&tab.router, &ann).await;
    let head = page.next_chunk().await.unwrap();
    assert!(
        head.len() < crate::nojs::render::REPLAY_BYTES + 8 * 1024,
        "the page starts with {} bytes",
        head.len()
    );
    assert!(head.contains("m099"), "the newest line is shown");
    assert!(!head.contains("m000"), "the oldest is not");
    assert!(
        head.contains("earlier line(s) are not shown again"),
        "{head}"
    );
}

#[tokio::test]
async fn what_visitors_type_is_shown_as_text() {
    let tab = tab("title = \"<i>room</i>\"");
    let ann = join(&tab.router, "<b>ann</b>").await;
    let mut page = open(&tab.router, &ann).await;
    let head = read_start(&mut page).await;
    assert!(
        head.contains("<title>&lt;i&gt;room&lt;/i&gt;</title>"),
        "{head}"
    );
    assert!(head.contains("<bdi>&lt;b&gt;ann&lt;/b&gt;</bdi>"), "{head}");
    assert!(head.contains("value=\"&lt;b&gt;ann&lt;/b&gt;\""), "{head}");
    post_form(
        &tab.router,
        &format!("{ann}/send"),
        &[("text", "<script>alert(\"x\")</script> & 'y'")],
    )
    .await;
    let line = page.read_until("</li>").await;
    // The templates escape what could end text or an attribute value (`<`, `>`, `&`, `"`:
    // every attribute is double-quoted, so `'` is plain text).
    assert!(
        line.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 'y'"),
        "{line}"
    );
    assert!(!page.text.contains("<script"), "{}", page.text);
    assert!(!page.text.contains("<b>"), "{}", page.text);
}

#[tokio::test]
async fn an_unknown_session_cannot_read_or_post() {
    let tab = tab("");
    let fake = format!("/nojs/{}", "0".repeat(32));
    for response in [
        get(&tab.router, &fake).await,
        post_form(&tab.router, &format!("{fake}/send"), &[("text", "hi")]).await,
        post_form(&tab.router, &format!("{fake}/rename"), &[("name", "x")]).await,
    ] {
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(text(response).await.contains("Join first"));
    }
    assert!(tab.events().is_empty(), "nobody joined: {:?}", tab.events());
}

#[tokio::test]
async fn refused_posts_say_why_with_the_right_status_and_the_room_carries_on() {
    let tab = tab("max_message_bytes = 10\n[rate_limit]\nburst = 4\nmessages_per_minute = 1");
    let ann = join(&tab.router, "ann").await;
    let bo = join(&tab.router, "bo").await;
    let mut page = open(&tab.router, &ann).await;
    page.read_until("<ol class=\"log nojs-log\">").await;

    let cases = [
        (
            "send",
            "text",
            "x".repeat(11),
            StatusCode::PAYLOAD_TOO_LARGE,
            "at most 10 bytes",
        ),
        (
            "rename",
            "name",
            "ANN".to_owned(),
            StatusCode::CONFLICT,
            "is taken",
        ),
        (
            "rename",
            "name",
            "a\u{202E}b".to_owned(),
            StatusCode::BAD_REQUEST,
            "text direction",
        ),
    ];
    for (action, field, value, status, why) in cases {
        let response = post_form(&tab.router, &format!("{bo}/{action}"), &[(field, &value)]).await;
        assert_eq!(response.status(), status, "{action} {value:?}");
        let body = text(response).await;
        assert!(body.contains(why), "{body}");
        assert!(
            body.contains(&format!("href=\"{bo}\"")),
            "a link back: {body}"
        );
    }
    // Three refused posts took three tokens of four; the fourth passes, the fifth is refused.
    assert_eq!(
        see_other(&post_form(&tab.router, &format!("{bo}/send"), &[("text", "ok")]).await),
        bo
    );
    let response = post_form(&tab.router, &format!("{bo}/send"), &[("text", "more")]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(text(response).await.contains("too fast"));
    let seen = page.read_until("ok</span>").await;
    assert!(
        !seen.contains("xxxxxxxxxxx") && !seen.contains("more"),
        "{seen}"
    );
}

#[tokio::test]
async fn a_form_body_over_the_limit_is_refused() {
    let tab = tab("max_message_bytes = 10");
    let ann = join(&tab.router, "ann").await;
    let response = post_form(
        &tab.router,
        &format!("{ann}/send"),
        &[("text", &"x".repeat(5000))],
    )
    .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(text(response).await.contains("at most 10 bytes"));
    let response = post_form(&tab.router, &format!("{ann}/send"), &[("wrong", "x")]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_refused_name_on_join_gives_a_random_name_and_says_why() {
    let tab = tab("");
    join(&tab.router, "ann").await;
    let other = join(&tab.router, "Ann").await;
    let mut page = open(&tab.router, &other).await;
    let head = page.read_until("</li>").await;
    assert!(head.contains("is taken"), "{head}");
    assert!(!head.contains("You are <strong><bdi>Ann"), "{head}");
}

#[tokio::test]
async fn the_room_full_is_refused_without_javascript_too() {
    let tab = tab("max_members = 1");
    join(&tab.router, "ann").await;
    let response = post_form(&tab.router, "/nojs/join", &[("name", "bo")]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(response).await.contains("full"));
}

#[tokio::test]
async fn a_member_whose_page_is_gone_leaves_after_the_grace_period() {
    let tab = tab("nojs_leave_after_seconds = 1");
    let ann = join(&tab.router, "ann").await;
    let mut watcher_page = {
        let watcher = join(&tab.router, "watcher").await;
        open(&tab.router, &watcher).await
    };
    let page = open(&tab.router, &ann).await;
    drop(page);
    watcher_page.read_until("<bdi>ann</bdi> left").await;
    let response = get(&tab.router, &ann).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_member_with_an_open_page_stays() {
    let tab = tab("nojs_leave_after_seconds = 1\nkeepalive_seconds = 1");
    let ann = join(&tab.router, "ann").await;
    let mut page = open(&tab.router, &ann).await;
    page.read_until("<ol class=\"log nojs-log\">").await;
    // Three keepalives: three seconds with the page open, three times the grace period.
    for _ in 0..3 {
        assert_eq!(page.next_chunk().await.as_deref(), Some("\n"));
    }
    let bo = join(&tab.router, "bo").await;
    page.read_until("<bdi>bo</bdi> joined").await;
    post_form(
        &tab.router,
        &format!("{ann}/send"),
        &[("text", "still here")],
    )
    .await;
    page.read_until("still here").await;
    assert!(!page.text.contains("<bdi>ann</bdi> left"));
    drop(bo);
}

#[tokio::test]
async fn the_leave_form_ends_the_members_pages() {
    let tab = tab("");
    let ann = join(&tab.router, "ann").await;
    let mut page = open(&tab.router, &ann).await;
    page.read_until("<ol class=\"log nojs-log\">").await;
    post_form(&tab.router, &format!("{ann}/leave"), &[]).await;
    page.read_to_end().await;
    assert!(page.text.contains("You have left the chat."));
    assert!(page.text.ends_with("</html>"), "{}", page.text);
    assert_eq!(
        tab.events(),
        [
            TabEvent::VisitorJoined { present: 1 },
            TabEvent::VisitorLeft { present: 0 }
        ]
    );
}

#[tokio::test]
async fn pages_end_when_the_tab_stops() {
    let tab = tab("");
    let ann = join(&tab.router, "ann").await;
    let mut page = open(&tab.router, &ann).await;
    page.read_until("<ol class=\"log nojs-log\">").await;
    tab.shutdown.cancel();
    page.read_to_end().await;
    assert!(page.text.contains("The chat has stopped"), "{}", page.text);
    assert!(
        page.text.contains("Reload this page later"),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn one_session_may_stream_in_a_few_tabs_only() {
    let tab = tab("");
    let ann = join(&tab.router, "ann").await;
    let mut pages = Vec::new();
    for _ in 0..4 {
        pages.push(open(&tab.router, &ann).await);
    }
    let response = get(&tab.router, &ann).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    pages.pop();
    pages.push(open(&tab.router, &ann).await);
}

#[tokio::test]
async fn the_join_page_and_the_start_page_offer_the_plain_chat() {
    let tab = tab("");
    let page = text(get(&tab.router, "/nojs").await).await;
    assert!(page.contains("action=\"/nojs/join\""), "{page}");
    let index = text(get(&tab.router, "/").await).await;
    assert!(index.contains("<noscript>"), "{index}");
    assert!(index.contains("action=\"/nojs/join\""), "{index}");
    // Regression (issue 12): without JavaScript the start page is the chat without
    // JavaScript already; its footer linked to it. The link is shown by the script only.
    assert!(
        index.contains("<span id=\"nojs-link\" hidden> <a href=\"/nojs\">"),
        "{index}"
    );
    let script = std::str::from_utf8(crate::page::SCRIPT.bytes()).unwrap();
    assert!(
        script.contains("$(\"nojs-link\").hidden = false;"),
        "{script}"
    );
    // Neither page without JavaScript links to itself in its footer.
    assert!(!page.contains("href=\"/nojs\""), "{page}");
}

/// Regression (issue 9, look-alike names), without JavaScript: "аlice" (Cyrillic а) joined
/// and renamed next to "alice".
#[tokio::test]
async fn a_look_alike_name_is_refused_without_javascript() {
    let tab = tab("");
    join(&tab.router, "alice").await;
    let other = join(&tab.router, "\u{430}lice").await;
    let mut page = open(&tab.router, &other).await;
    let head = page.read_until("</li>").await;
    assert!(head.contains("looks too much like"), "{head}");
    assert!(!head.contains("You are <strong><bdi>\u{430}lice"), "{head}");
    let response = post_form(
        &tab.router,
        &format!("{other}/rename"),
        &[("name", "AL\u{406}CE")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(text(response).await.contains("looks too much like"));
}

/// Regression (issue 9, room-wide floods), without JavaScript: joins beyond the room's join
/// limit are refused with 503 and nobody hears of them.
#[tokio::test]
async fn joins_beyond_the_join_limit_are_refused_without_javascript() {
    let tab = tab("[join_limit]\nburst = 2\njoins_per_minute = 1");
    let ann = join(&tab.router, "ann").await;
    join(&tab.router, "bo").await;
    let response = post_form(&tab.router, "/nojs/join", &[("name", "cy")]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(response).await.contains("try again in a moment"));
    let mut page = open(&tab.router, &ann).await;
    let head = read_start(&mut page).await;
    assert!(head.contains("Here now (2): "), "{head}");
}

/// Regression (issue 9, room-wide floods): the rate limit was per connection (or session),
/// so a client that reconnected, or joined again, got a fresh burst each time. Keyed by the
/// visitor (one Tor circuit), every session and connection of theirs shares one bucket.
#[tokio::test]
async fn one_visitor_shares_one_rate_limit_over_all_sessions() {
    let tab = tab("[rate_limit]\nburst = 4\nmessages_per_minute = 1");
    let circuit = Visitor::unique();
    let join_as = async |name: &str| {
        let response = post_form_as(&tab.router, circuit, "/nojs/join", &[("name", name)]).await;
        see_other(&response)
    };
    let first = join_as("one").await;
    let second = join_as("two").await;
    for page in [&first, &second] {
        let response = post_form_as(
            &tab.router,
            circuit,
            &format!("{page}/send"),
            &[("text", "hi")],
        )
        .await;
        assert_eq!(see_other(&response), *page);
    }
    // Two joins and two messages took the visitor's four tokens, though each session has
    // tokens left: the next post of either is refused, and so is a third join.
    let response = post_form_as(
        &tab.router,
        circuit,
        &format!("{second}/send"),
        &[("text", "more")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(text(response).await.contains("too fast"));
    let response = post_form_as(&tab.router, circuit, "/nojs/join", &[("name", "three")]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another visitor is not held back by this one.
    let response = post_form(&tab.router, &format!("{second}/send"), &[("text", "other")]).await;
    assert_eq!(see_other(&response), second);
}

/// What a hostile room title, name or message would run as, were it not escaped.
const HOSTILE: [&str; 3] = [
    "<script>alert(\"t\")</script>",
    "\"><svg onload=alert(1)>",
    "<img src=x onerror=alert(2)>",
];

/// Fails if `page` carries any of [`HOSTILE`] as markup: a raw `<` or `"` of one of them.
fn assert_inert(what: &str, page: &str) {
    for hostile in HOSTILE {
        assert!(
            !page.contains(hostile),
            "{what} carries {hostile:?}:\n{page}"
        );
    }
    // The one image a page has is the sdk's logo in its header.
    let page = page.replacen(onionhost_sdk::page::LOGO_IMG, "", 1);
    for tag in ["<svg", "<img", "<script>"] {
        assert!(!page.contains(tag), "{what} carries {tag:?}:\n{page}");
    }
}

/// Regression (issue 9, HTML from templates that escape by default): pages were built with
/// `format!` and `.replace("{{title}}")`, each value escaped by hand, so one forgotten
/// `escape()` would have been an XSS. A hostile title, names and message are shown as text on
/// every page the server writes: the start page, the join page, a session's page and its
/// lines, the pages of refusals and dead ends, and the end of a page.
#[tokio::test]
async fn a_hostile_title_name_or_message_is_escaped_on_every_page() {
    let [title, name, other] = HOSTILE;
    let tab = tab(&format!("title = '{title}'"));
    let escaped_title = "&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt;";

    let index = text(get(&tab.router, "/").await).await;
    assert_inert("the start page", &index);
    assert!(index.contains(&format!("<h1>{escaped_title}")), "{index}");
    let join_page = text(get(&tab.router, "/nojs").await).await;
    assert_inert("the join page", &join_page);
    assert!(join_page.contains(&format!("<title>{escaped_title}</title>")));
    let missing = get(&tab.router, "/nowhere").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_inert("the 404 page", &text(missing).await);

    let ann = join(&tab.router, name).await;
    let bo = join(&tab.router, other).await;
    let mut page = open(&tab.router, &ann).await;
    let head = page.read_until("<ol class=\"log nojs-log\">").await;
    assert!(
        head.contains("value=\"&quot;&gt;&lt;svg onload=alert(1)&gt;\""),
        "{head}"
    );
    post_form(&tab.router, &format!("{bo}/send"), &[("text", title)]).await;
    page.read_until("</li>").await;
    // A refusal that names the name wanted (it is taken).
    let refused = post_form(&tab.router, &format!("{bo}/rename"), &[("name", name)]).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_inert("a refusal", &text(refused).await);
    let response = post_form(&tab.router, &format!("{bo}/leave"), &[]).await;
    assert_eq!(see_other(&response), "/nojs?left");
    assert_inert(
        "the join page after leaving",
        &text(get(&tab.router, "/nojs?left").await).await,
    );
    page.read_until("</li>").await;
    post_form(&tab.router, &format!("{ann}/leave"), &[]).await;
    page.read_to_end().await;
    assert!(page.text.contains("You have left the chat."));
    assert_inert("a session's page", &page.text);
    assert!(page.text.contains("&lt;img src=x onerror=alert(2)&gt;"));
}

/// Regression (issue 14, chat at scale): the page without JavaScript lists who is here in the
/// same capped way as the live page (the first ones and a count), and shows a crowd's
/// arrivals as the lines of their ticks.
#[tokio::test]
async fn a_large_room_is_listed_capped_and_a_crowd_arrives_in_a_few_lines() {
    let tab = tab("");
    let ann = join(&tab.router, "aaa-ann").await;
    let mut page = open(&tab.router, &ann).await;
    page.read_until("<ol class=\"log nojs-log\">").await;
    for i in 0..120 {
        join(&tab.router, &format!("guest{i:03}")).await;
    }
    page.read_until(" joined · ").await;
    page.read_until("121 here").await;
    let mut reloaded = open(&tab.router, &ann).await;
    let head = read_start(&mut reloaded).await;
    let roster = head.rsplit("<li class=\"roster\">").next().unwrap();
    assert!(roster.contains("Here now (121): "), "{roster}");
    // At most `ROSTER_NAMES` names: each change streams the list again.
    assert!(
        roster.contains("<bdi>guest048</bdi> and 71 more"),
        "{roster}"
    );
    assert!(!roster.contains("guest049"), "{roster}");
}
