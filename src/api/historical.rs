//! `GET /v2/data/historical/{YYYYMMDD}/{HH}`: the call records of the token's organization
//! that ended in one UTC hour, shaped like Mindful's historical data API (v2).
//!
//! `HH` names the hour by its end: `04` is `[03:00, 04:00)` UTC, `24` is `[23:00, 24:00)`.
//! The answer, `{"data":[record, …]}`, is streamed: the store is read one page of
//! [`RECORD_PAGE`] records at a time, the next page only once the client has taken the
//! previous one, so an hour of any size is served in bounded memory. The first page is read
//! before the status line goes out (a store failure is then a clean 503); a failure later
//! aborts the connection, so a client never takes a cut answer for a whole one.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use http_body::Frame;

use super::error::ApiError;
use super::ApiState;
use crate::callback::service::{Service, ServiceError};
use crate::store::{RecordCursor, RecordPage, RECORD_PAGE};

/// Longest path parameter echoed back in an error message.
const MAX_ECHO: usize = 16;

fn echo(v: &str) -> String {
    v.chars().take(MAX_ECHO).collect()
}

/// The UTC window `[start, end)` named by a date (`YYYYMMDD`) and an hour by its end
/// (`01`–`24`).
pub fn hour_window(date: &str, hour: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let bad_date = || {
        ApiError::InvalidParameters(format!(
            "date {:?} is not a real UTC date written YYYYMMDD",
            echo(date)
        ))
    };
    if !digits(date, 8) {
        return Err(bad_date());
    }
    let num = |r: std::ops::Range<usize>| date[r].parse::<u32>().unwrap_or(0);
    let y = i32::try_from(num(0..4)).unwrap_or(0);
    let day = NaiveDate::from_ymd_opt(y, num(4..6), num(6..8)).ok_or_else(bad_date)?;
    let h = if digits(hour, 2) {
        hour.parse::<i64>().unwrap_or(0)
    } else {
        0
    };
    if !(1..=24).contains(&h) {
        return Err(ApiError::InvalidParameters(format!(
            "hour {:?} must be 01 to 24: the UTC hour by its end (04 is 03:00-04:00)",
            echo(hour)
        )));
    }
    let end = day.and_hms_opt(0, 0, 0).ok_or_else(bad_date)?.and_utc() + Duration::hours(h);
    Ok((end - Duration::hours(1), end))
}

/// `GET /v2/data/historical/{date}/{hour}`
pub async fn historical(
    State(s): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let org = s.dir.authenticate(&headers)?.to_owned();
    s.dir.authorize(&org, &org, peer.ip())?;
    let Path((date, hour)) = p.map_err(|e| ApiError::InvalidParameters(e.body_text()))?;
    let (from, to) = hour_window(&date, &hour)?;
    let first = s
        .service
        .records_page(&org, from, to, None, RECORD_PAGE)
        .await?;
    let body = RecordsBody {
        fetch: Fetch {
            service: s.service.clone(),
            org,
            from,
            to,
        },
        ready: Some(first),
        pending: None,
        opened: false,
        wrote_any: false,
        closed: false,
    };
    let mut r = (StatusCode::OK, Body::new(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// What a page request needs.
#[derive(Clone)]
struct Fetch {
    service: Service,
    org: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

type PageFuture = Pin<Box<dyn Future<Output = Result<RecordPage, ServiceError>> + Send>>;

impl Fetch {
    fn after(&self, cursor: RecordCursor) -> PageFuture {
        let f = self.clone();
        Box::pin(async move {
            f.service
                .records_page(&f.org, f.from, f.to, Some(cursor), RECORD_PAGE)
                .await
        })
    }
}

/// The streamed answer: `{"data":[`, each page's records as the client reads, `]}`.
struct RecordsBody {
    fetch: Fetch,
    /// A page read and not yet sent.
    ready: Option<RecordPage>,
    /// The next page being read.
    pending: Option<PageFuture>,
    /// `{"data":[` was sent.
    opened: bool,
    /// A record was sent (the next one needs a comma).
    wrote_any: bool,
    /// `]}` was sent (or the stream failed).
    closed: bool,
}

impl RecordsBody {
    /// One page's bytes; queues the read of the next page, if any.
    fn render(&mut self, page: RecordPage) -> Bytes {
        let size: usize = page.records.iter().map(|r| r.len() + 1).sum();
        let mut out = String::with_capacity(size + 16);
        if !self.opened {
            out.push_str("{\"data\":[");
            self.opened = true;
        }
        for r in &page.records {
            if self.wrote_any {
                out.push(',');
            }
            out.push_str(r);
            self.wrote_any = true;
        }
        match page.next {
            Some(c) => self.pending = Some(self.fetch.after(c)),
            None => {
                out.push_str("]}");
                self.closed = true;
            }
        }
        Bytes::from(out)
    }
}

impl http_body::Body for RecordsBody {
    type Data = Bytes;
    type Error = ServiceError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ServiceError>>> {
        let this = self.get_mut();
        if let Some(page) = this.ready.take() {
            return Poll::Ready(Some(Ok(Frame::data(this.render(page)))));
        }
        let Some(f) = this.pending.as_mut() else {
            return Poll::Ready(None);
        };
        match f.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                this.pending = None;
                match r {
                    Ok(page) => Poll::Ready(Some(Ok(Frame::data(this.render(page))))),
                    Err(e) => {
                        tracing::error!(error = %e, "historical records: a later page failed; answer aborted");
                        this.closed = true;
                        Poll::Ready(Some(Err(e)))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.closed && self.ready.is_none() && self.pending.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn hours_are_named_by_their_end() {
        assert_eq!(
            hour_window("20260114", "04").unwrap(),
            (at("2026-01-14T03:00:00Z"), at("2026-01-14T04:00:00Z"))
        );
        assert_eq!(
            hour_window("20260114", "01").unwrap(),
            (at("2026-01-14T00:00:00Z"), at("2026-01-14T01:00:00Z"))
        );
        assert_eq!(
            hour_window("20261231", "24").unwrap(),
            (at("2026-12-31T23:00:00Z"), at("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            hour_window("20240229", "12").unwrap().0,
            at("2024-02-29T11:00:00Z")
        );
    }

    #[test]
    fn bad_dates_and_hours_name_what_is_wrong() {
        for d in [
            "20261399",
            "20250229",
            "2026011",
            "202601144",
            "2026-1-14",
            "",
            "２０２６０１１４",
        ] {
            let e = hour_window(d, "04").unwrap_err();
            assert!(
                matches!(&e, ApiError::InvalidParameters(m) if m.starts_with("date")),
                "{d}: {e}"
            );
        }
        for h in ["00", "25", "4", "004", "+4", "", "xx", "99"] {
            let e = hour_window("20260114", h).unwrap_err();
            assert!(
                matches!(&e, ApiError::InvalidParameters(m) if m.starts_with("hour")),
                "{h}: {e}"
            );
        }
        // The date is checked first.
        let e = hour_window("2026", "00").unwrap_err();
        assert!(e.to_string().starts_with("date"), "{e}");
    }
}
