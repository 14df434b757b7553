//! The CLI's client for the running daemon's management API: the typed requests and
//! answers of `petrel-mgmt-api`, over the workspace's one HTTP client.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use petrel_mgmt_api::ErrorBody;
use reqwest::blocking::{Client as Http, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The management API of the daemon listening on `127.0.0.1:port`.
pub struct Client {
    port: u16,
    http: Http,
}

impl Client {
    /// A client for the daemon on `port`, giving up on an answer after `timeout`.
    pub fn new(port: u16, timeout: Duration) -> Result<Client> {
        let http = Http::builder()
            .timeout(timeout)
            .build()
            .context("setting up the HTTP client")?;
        Ok(Client { port, http })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `GET path` with `query` parameters.
    pub fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &(impl Serialize + ?Sized),
    ) -> Result<T> {
        self.send(self.http.get(self.url(path)).query(query))
    }

    /// `POST path` with `query` parameters and no body.
    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &(impl Serialize + ?Sized),
    ) -> Result<T> {
        self.send(self.http.post(self.url(path)).query(query))
    }

    /// `POST path` with a JSON body.
    pub fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T> {
        self.send(self.http.post(self.url(path)).json(body))
    }

    /// `DELETE path` with `query` parameters.
    pub fn delete<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &(impl Serialize + ?Sized),
    ) -> Result<T> {
        self.send(self.http.delete(self.url(path)).query(query))
    }

    /// Sends the request; an error answer becomes an error naming its status and message.
    fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        let port = self.port;
        let response = request.send().with_context(|| {
            format!("cannot reach the petrel daemon on 127.0.0.1:{port} (is it running?)")
        })?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .with_context(|| format!("reading the daemon's answer ({status})"))?;
        if status >= 400 {
            let error = serde_json::from_str::<ErrorBody>(&body).map_or(body, |e| e.error);
            bail!("daemon answered {status}: {error}");
        }
        serde_json::from_str(&body)
            .with_context(|| format!("daemon answered {status} with an unexpected body: {body}"))
    }
}

/// No query parameters.
pub const NO_QUERY: &[(&str, &str)] = &[];
