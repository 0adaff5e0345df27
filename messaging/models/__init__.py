from messaging.models.conversations import Conversation, ConversationMember, Message
from messaging.models.signin import SigninFailures
from messaging.models.stream import ItemStatus, PendingItem, Priority, StreamCounter, StreamItem
from messaging.models.uploads import Upload
from messaging.models.users import Connection, User, WsTicket

__all__ = [
    "Connection",
    "Conversation",
    "ConversationMember",
    "ItemStatus",
    "Message",
    "PendingItem",
    "Priority",
    "SigninFailures",
    "StreamCounter",
    "StreamItem",
    "Upload",
    "User",
    "WsTicket",
]
