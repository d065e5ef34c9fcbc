//! S3 (and S3-compatible stores): healthy when `HEAD /<bucket>` answers 2xx.
//!
//! The request is signed by the host (`auth.type: aws_sigv4`), so the secret
//! key never enters this component. `settings.bucket` names the bucket
//! (path-style addressing, as MinIO, Ceph and most S3-compatible stores
//! use); without it the check is `HEAD /` on the endpoint, for
//! virtual-hosted addressing where the host names the bucket
//! (`host: my-bucket.s3.eu-west-1.amazonaws.com`).
//!
//! 404 means the bucket does not exist, 403 that the credentials or the
//! bucket policy refuse the check, 301 that the bucket lives in another
//! region: each is `unhealthy` with what to change.

use sandport_sdk::{
    AuthKind, Config, Connector, ConnectorType, Error, HealthReport, export_connector, http,
};

struct S3 {
    request: http::Request,
    bucket: Option<String>,
    signed: bool,
}

impl Connector for S3 {
    const NAME: &'static str = "S3";
    const TYPE: ConnectorType = ConnectorType::Storage;
    const DESCRIPTION: &'static str = "S3 bucket reachable with the configured credentials";

    fn new(config: &Config) -> Result<Self, String> {
        let bucket = config
            .setting("bucket")
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_string);
        if let Some(b) = &bucket
            && !b
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c))
        {
            return Err(format!(
                "settings.bucket: `{b}` is not a bucket name (lower-case letters, digits, `.`, `-`)"
            ));
        }
        let path = match &bucket {
            Some(b) => format!("/{b}"),
            None => config.health_path_or("/").to_string(),
        };
        Ok(S3 {
            request: http::Request::new("HEAD", config.url(&path)),
            bucket,
            signed: config.auth_kind == AuthKind::AwsSigv4,
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let response = self.request.send()?;
        let what = match &self.bucket {
            Some(b) => format!("bucket `{b}`"),
            None => "the bucket".to_string(),
        };
        let region = response.header("x-amz-bucket-region");
        let report = match response.status {
            200..=299 => HealthReport::healthy().message(format!("{what} is reachable")),
            404 => HealthReport::unhealthy(format!(
                "{what} does not exist ({})",
                response.describe_status()
            )),
            403 if !self.signed => HealthReport::unhealthy(format!(
                "{what} refused an unsigned request ({}); set auth.type: aws_sigv4 with the access key",
                response.describe_status()
            )),
            403 => HealthReport::unhealthy(format!(
                "{what} refused the credentials ({}); check the access key, auth.region and the bucket policy",
                response.describe_status()
            )),
            301 | 307 => {
                let region = region.as_deref().unwrap_or("another region");
                HealthReport::unhealthy(format!(
                    "{what} is in {region} ({}); set auth.region and the regional endpoint",
                    response.describe_status()
                ))
            }
            _ => HealthReport::unhealthy(response.describe_status()),
        };
        let mut report = report.detail("status", response.status.to_string());
        if let Some(region) = region {
            report = report.detail("region", region);
        }
        Ok(report)
    }
}

export_connector!(S3);
