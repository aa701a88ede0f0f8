//! The group layer's one error type: why the coordinator refused a request. The api edge maps
//! each to its Kafka error code (`api::errors`); nothing below it knows the codes.

/// A refusal, named after the Kafka condition it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// No coordinator now: `__consumer_offsets` does not exist, or the group is being removed.
    CoordinatorNotAvailable,
    /// This shard does not (or no longer) coordinate the group: the broker is stopping.
    NotCoordinator,
    /// The group's `__consumer_offsets` partition is still being loaded.
    CoordinatorLoadInProgress,
    UnknownMemberId,
    IllegalGeneration,
    RebalanceInProgress,
    /// A static member's instance id now belongs to another member id.
    FencedInstanceId,
    InconsistentGroupProtocol,
    InvalidSessionTimeout,
    GroupMaxSizeReached,
    /// KIP-394: a new dynamic member must join again with the member id it was given.
    MemberIdRequired,
    /// KIP-848: the member's epoch is ahead of the group's view (it must rejoin).
    FencedMemberEpoch,
    /// KIP-848: a commit with an older member epoch.
    StaleMemberEpoch,
    GroupIdNotFound,
    NonEmptyGroup,
    GroupSubscribedToTopic,
    UnknownTopicOrPartition,
    OffsetMetadataTooLarge,
    InvalidRequest,
    InvalidRegularExpression,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}
