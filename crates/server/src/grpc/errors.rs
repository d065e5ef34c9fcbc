//! What a `ServiceError` is to a gRPC caller.

use tonic::Status;

use sandport_core::service::ServiceError;
use sandport_core::uploads::UploadError;

/// The status code an API caller can branch on, and a message that says
/// what to change (internals are logged, not sent).
pub(crate) fn status(error: ServiceError) -> Status {
    {
        let message = error.to_string();
        match error {
            ServiceError::NotFound(_) => Status::not_found(message),
            ServiceError::AlreadyExists(_) => Status::already_exists(message),
            ServiceError::Invalid(_) | ServiceError::Rejected(_) => {
                Status::invalid_argument(message)
            }
            ServiceError::Conflict(_) => Status::aborted(message),
            ServiceError::State(_) => Status::internal(crate::internal::report(&message)),
            ServiceError::ShuttingDown | ServiceError::Unavailable(_) => {
                Status::unavailable(message)
            }
            ServiceError::ResourceExhausted(_) => Status::resource_exhausted(message),
            ServiceError::Upload(error) => match error {
                UploadError::TooLarge { .. } | UploadError::NotAComponent(_) => {
                    Status::invalid_argument(message)
                }
                UploadError::Full { .. } => Status::resource_exhausted(message),
                UploadError::NotFound(_) => Status::not_found(message),
                UploadError::InUse { .. } => Status::failed_precondition(message),
                _ => Status::internal(crate::internal::report(&message)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn each_service_error_has_the_code_a_caller_branches_on() {
        let cases = [
            (ServiceError::NotFound("a".into()), Code::NotFound),
            (ServiceError::AlreadyExists("a".into()), Code::AlreadyExists),
            (ServiceError::Invalid(Vec::new()), Code::InvalidArgument),
            (ServiceError::Conflict("changed".into()), Code::Aborted),
            (ServiceError::ShuttingDown, Code::Unavailable),
            (
                ServiceError::Unavailable("etcd: connection refused".into()),
                Code::Unavailable,
            ),
            (
                ServiceError::ResourceExhausted("full".into()),
                Code::ResourceExhausted,
            ),
        ];
        for (error, code) in cases {
            let what = format!("{error:?}");
            let message = error.to_string();
            let status = status(error);
            assert_eq!(status.code(), code, "{what}");
            assert_eq!(status.message(), message, "{what}");
        }
    }
}
