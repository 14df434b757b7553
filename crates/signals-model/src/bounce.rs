//! SparkPost's bounce classes (spec §3.1) and the categories the Metrics API reports them
//! under (spec §3.2; SparkPost documents ids 0 and 1, petrel numbers the rest).

/// A bounce category, as the Metrics API's `count_*_bounce` metrics split bounces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Response text not recognised (`bounce_category_id` 0).
    Undetermined,
    /// Permanent: the address is bad (1).
    Hard,
    /// Temporary conditions that ended the attempt (2).
    Soft,
    /// The receiver blocked the sender or content (3).
    Block,
    /// Refused by the sending platform's own policy (4).
    Admin,
}

impl Category {
    /// `bounce_category_id`.
    pub fn id(self) -> i64 {
        match self {
            Category::Undetermined => 0,
            Category::Hard => 1,
            Category::Soft => 2,
            Category::Block => 3,
            Category::Admin => 4,
        }
    }

    /// `bounce_category_name`.
    pub fn name(self) -> &'static str {
        match self {
            Category::Undetermined => "Undetermined",
            Category::Hard => "Hard",
            Category::Soft => "Soft",
            Category::Block => "Block",
            Category::Admin => "Admin",
        }
    }
}

/// One row of the bounce class table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BounceClass {
    /// `bounce_class` / `classification_id`.
    pub code: u16,
    /// `bounce_class_name`.
    pub name: &'static str,
    /// `bounce_class_description`.
    pub description: &'static str,
    /// The category it counts under.
    pub category: Category,
}

const fn c(
    code: u16,
    name: &'static str,
    description: &'static str,
    category: Category,
) -> BounceClass {
    BounceClass {
        code,
        name,
        description,
        category,
    }
}

/// Every class of spec §3.1.
pub const CLASSES: &[BounceClass] = &[
    c(
        1,
        "Undetermined",
        "The response text could not be identified",
        Category::Undetermined,
    ),
    c(
        10,
        "Invalid Recipient",
        "The recipient is invalid",
        Category::Hard,
    ),
    c(
        20,
        "Soft Bounce",
        "The message soft bounced",
        Category::Soft,
    ),
    c(
        21,
        "DNS Failure",
        "The message bounced due to a DNS failure",
        Category::Soft,
    ),
    c(
        22,
        "Mailbox Full",
        "The message bounced due to the remote mailbox being over quota",
        Category::Soft,
    ),
    c(
        23,
        "Too Large",
        "The message bounced because it was too large for the recipient",
        Category::Soft,
    ),
    c(24, "Timeout", "The message timed out", Category::Soft),
    c(
        25,
        "Admin Failure",
        "The message was failed by the sending platform's configured policies",
        Category::Admin,
    ),
    c(
        30,
        "Generic Bounce: No RCPT",
        "No recipient could be determined for the message",
        Category::Hard,
    ),
    c(
        40,
        "Generic Bounce",
        "The message failed for unspecified reasons",
        Category::Soft,
    ),
    c(
        50,
        "Mail Block",
        "The message was blocked by the receiver",
        Category::Block,
    ),
    c(
        51,
        "Spam Block",
        "The message was blocked by the receiver as coming from a known spam source",
        Category::Block,
    ),
    c(
        52,
        "Spam Content",
        "The message was blocked by the receiver as spam",
        Category::Block,
    ),
    c(
        53,
        "Prohibited Attachment",
        "The message was blocked by the receiver because it contained an attachment",
        Category::Block,
    ),
    c(
        54,
        "Relaying Denied",
        "The message was blocked by the receiver because relaying is not allowed",
        Category::Block,
    ),
    c(
        60,
        "Auto-Reply",
        "The message is an auto-reply/vacation mail",
        Category::Soft,
    ),
    c(
        70,
        "Transient Failure",
        "Message transmission has been temporarily delayed",
        Category::Soft,
    ),
    c(
        80,
        "Subscribe",
        "The message is a subscribe request",
        Category::Admin,
    ),
    c(
        90,
        "Unsubscribe",
        "The message is an unsubscribe request",
        Category::Hard,
    ),
    c(
        100,
        "Challenge-Response",
        "The message is a challenge-response probe",
        Category::Soft,
    ),
];

/// The class with this code; unknown or missing codes are Undetermined (class 1), as an
/// unrecognised response is.
pub fn class(code: Option<u16>) -> &'static BounceClass {
    code.and_then(|c| CLASSES.iter().find(|b| b.code == c))
        .unwrap_or(&CLASSES[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        assert_eq!(class(Some(10)).category, Category::Hard);
        assert_eq!(class(Some(51)).category, Category::Block);
        assert_eq!(class(Some(25)).category, Category::Admin);
        assert_eq!(class(Some(22)).category, Category::Soft);
        assert_eq!(class(Some(999)).code, 1);
        assert_eq!(class(None).category, Category::Undetermined);
    }
}
