//! AWS Signature Version 4 for `auth.type: aws_sigv4`: the host signs each
//! request to the connector's own endpoint after the guest has built it, so
//! the secret key never enters the sandbox.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderName, HeaderValue};

pub struct SigV4 {
    credentials: Credentials,
    region: String,
    service: String,
}

impl SigV4 {
    pub fn new(
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
        region: &str,
        service: &str,
    ) -> Self {
        SigV4 {
            credentials: Credentials::new(
                access_key_id,
                secret_access_key,
                session_token.map(str::to_string),
                None,
                "sandport-config",
            ),
            region: region.to_string(),
            service: service.to_string(),
        }
    }

    /// Adds `Authorization`, `X-Amz-Date`, `X-Amz-Content-Sha256` (and
    /// `X-Amz-Security-Token`) to `request`, signing its method, URL,
    /// headers and body as they are now.
    pub fn sign(&self, request: &mut reqwest::Request, now: SystemTime) -> Result<(), String> {
        let mut settings = SigningSettings::default();
        // S3 wants the payload hash as a header and paths signed as sent.
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = if self.service == "s3" {
            PercentEncodingMode::Single
        } else {
            PercentEncodingMode::Double
        };
        settings.uri_path_normalization_mode = if self.service == "s3" {
            UriPathNormalizationMode::Disabled
        } else {
            UriPathNormalizationMode::Enabled
        };
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into();
        let body: &[u8] = request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .unwrap_or_default();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.url().as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("cannot sign the request: {e}"))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into_parts();
        let (headers, _query) = instructions.into_parts();
        for header in headers {
            let name = HeaderName::from_bytes(header.name().as_bytes())
                .map_err(|e| format!("cannot sign the request: {e}"))?;
            let mut value = HeaderValue::from_str(header.value())
                .map_err(|e| format!("cannot sign the request: {e}"))?;
            value.set_sensitive(header.sensitive());
            request.headers_mut().insert(name, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of AWS's S3 documentation ("Example: GET Object"): the
    /// same keys, time and request must give the documented signature.
    #[test]
    fn matches_the_s3_documentation_example() {
        let signer = SigV4::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            "us-east-1",
            "s3",
        );
        let url = url::Url::parse("https://examplebucket.s3.amazonaws.com/test.txt").expect("url");
        let mut request = reqwest::Request::new(http::Method::GET, url);
        request
            .headers_mut()
            .insert("range", HeaderValue::from_static("bytes=0-9"));
        // 20130524T000000Z
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_369_353_600);
        signer.sign(&mut request, now).expect("signed");
        let authorization = request.headers()["authorization"].to_str().expect("ascii");
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
            ),
            "{authorization}"
        );
        assert!(
            authorization.ends_with(
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            ),
            "{authorization}"
        );
        assert_eq!(
            request.headers()["x-amz-content-sha256"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
