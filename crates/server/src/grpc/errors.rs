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
