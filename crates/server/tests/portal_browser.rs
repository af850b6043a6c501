//! The portal in a real browser: a headless Chromium, driven through
//! chromedriver, follows a detection's `LinkToWDATP` as an analyst would
//! from a SIEM, signs in, and sees the alert, with a detection's
//! `<script>` shown as text and never run. Needs Debian's `chromium` and
//! `chromium-driver`; without them the test fails and says so.

mod portal_fixture;
mod webdriver;

use std::time::Duration;

use portal_fixture::{ALICE, HOSTILE_COMMAND, HOSTILE_URL, PASSWORD, start, text};
use webdriver::Browser;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_follows_a_link_signs_in_and_reads_the_alert_safely() {
    let portal = start().await;
    let chrome = Browser::start().await;
    let link = text(&portal.hostile, "LinkToWDATP");
    let title = text(&portal.hostile, "AlertTitle");

    chrome.navigate(link).await;
    let at = chrome.current_url().await;
    assert!(at.starts_with(&format!("{}/portal/signin?return=", portal.base)), "{at}");

    let username = chrome.find("#username").await;
    chrome.send_keys(&username, ALICE).await;
    let password = chrome.find("#password").await;
    chrome.send_keys(&password, PASSWORD).await;
    let submit = chrome.find("button[type=submit]").await;
    chrome.click(&submit).await;
    let at = chrome.wait_for_url(WAIT, |url| url == link).await;
    assert_eq!(at, link, "signing in leads back to the link that was followed");

    let body = chrome.find("body").await;
    let seen = chrome.text(&body).await;
    for shown in [title, "Detection 1 of 2", "Detection 2 of 2", "payload.dll", HOSTILE_URL] {
        assert!(seen.contains(shown), "the page does not show {shown:?}:\n{seen}");
    }
    assert!(seen.contains(HOSTILE_COMMAND), "the command line is shown as it was run:\n{seen}");
    assert!(seen.contains("<script>alert(1)</script>"));

    assert_eq!(chrome.open_dialog().await, None, "no script ran, so no dialog opened");
    assert_eq!(chrome.execute("return document.title").await, title);
    let scripts = chrome.execute("return document.scripts.length").await;
    assert_eq!(scripts, 0, "the page has no script elements at all");
    let script_links = chrome
        .execute("return [...document.links].filter(a => a.protocol !== 'http:').length")
        .await;
    assert_eq!(script_links, 0, "every link goes to the server's own pages");

    let context = chrome.find("a[href^='/incidents/byalert']").await;
    chrome.click(&context).await;
    chrome.wait_for_url(WAIT, |url| url.contains("/incidents/byalert")).await;
    let body = chrome.find("body").await;
    let seen = chrome.text(&body).await;
    assert!(seen.contains(text(&portal.older, "AlertTitle")), "the device's other alert:\n{seen}");
    chrome.quit().await;
}
