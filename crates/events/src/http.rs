//! The ingest API client: POSTs of gzipped event batches over the workspace's one HTTP
//! client (reqwest on rustls, Mozilla's roots from `webpki-roots`), reusing connections
//! between batches.

use std::time::Duration;

use crate::error::{EventsError, HttpError};

/// Largest response body kept; ingest answers are tiny.
const MAX_RESPONSE: usize = 1024 * 1024;

/// A response: status code and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Posts to one `upload-url`.
pub(crate) struct IngestClient {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl IngestClient {
    /// Checks `upload-url` (http or https, with a host and a valid port) and prepares the
    /// client, so a bad URL is a startup error.
    pub(crate) fn new(url: &str) -> Result<IngestClient, EventsError> {
        let bad = |reason| EventsError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let parsed = reqwest::Url::parse(url).map_err(|_| bad("not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("must start with http:// or https://"));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("missing host"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad("credentials in the URL are not supported; use api-key"));
        }
        let client = reqwest::Client::builder()
            // A redirected POST would resend events somewhere the operator did not name.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| bad("the HTTP client could not be set up"))?;
        Ok(IngestClient {
            client,
            url: parsed,
        })
    }

    /// POSTs `body` with the given extra headers, within `timeout` for the whole exchange.
    pub(crate) async fn post(
        &self,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let mut request = self
            .client
            .post(self.url.clone())
            .timeout(timeout)
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.map_err(HttpError::from_request)?;
        let status = response.status().as_u16();
        let mut body = response
            .bytes()
            .await
            .map_err(HttpError::from_request)?
            .to_vec();
        body.truncate(MAX_RESPONSE);
        Ok(Response { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_urls() {
        for ok in [
            "http://127.0.0.1:8080/api/v1/ingest/events",
            "http://[::1]/x",
            "https://api.sparkpost.com/api/v1/ingest/events",
        ] {
            assert!(IngestClient::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "api.sparkpost.com",
            "ftp://x/",
            "http://:80/x",
            "http://h:port/x",
            "https://user:pw@h/x",
        ] {
            assert!(IngestClient::new(bad).is_err(), "{bad}");
        }
    }
}
