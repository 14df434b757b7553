//! petrel's integration tests in one binary (one module per scenario): each starts the real
//! `petrel` binary on loopback ports and talks to it with real peers (swaks, Python's
//! smtplib, openssl, Postfix's tools, headless Chromium). One binary links once instead of
//! once per scenario. Helpers are in `../common/`.

#[path = "../common/mod.rs"]
mod common;

mod auth_starttls;
mod bounce_categories;
mod check_config;
mod classify;
mod connection_limits;
mod crash_delivery;
mod crash_recovery;
mod default_config;
mod delivery_backoff;
mod delivery_connect_rate;
mod delivery_greeting_backoff;
mod delivery_mx;
mod delivery_no_mx;
mod delivery_rate;
mod delivery_retry_bounce;
mod delivery_smtp_hosts;
mod dkim_short_key;
mod dkim_signing;
mod http_connection_caps;
mod job_control;
mod job_id_safe;
mod listeners;
mod logging;
mod message_body_access;
mod message_memory;
mod metrics_endpoint;
mod mgmt_csrf;
mod migration_examples;
mod monitor_pages;
mod pattern_list_routing;
mod pmta_command_line;
mod pools_injection_events;
mod protocol_limits;
mod queue_to;
mod reception_headers;
mod recovered_mail;
mod reload;
mod reload_restart_needed;
mod returns_end_to_end;
mod show_queues;
mod show_queues_pools;
mod signals_analytics_end_to_end;
mod signals_bad_api_key;
mod signals_clickhouse_fleet;
mod signals_end_to_end;
mod signals_pages;
mod signals_privacy_sha1;
mod signals_upload_outage;
mod signals_verbose_log;
mod sink_arguments;
mod sink_end_to_end;
mod sink_tags;
mod smuggling_outbound;
mod source_rules;
mod spool_disk_full;
mod spool_full;
mod suppression_cli;
mod suppression_settings;
mod tls_versions;
mod tracking_end_to_end;
mod tracking_per_recipient;
mod tracking_unsubscribe;
