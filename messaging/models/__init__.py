from messaging.models.conversations import Conversation, ConversationMember, Message
from messaging.models.stream import ItemStatus, PendingItem, StreamCounter, StreamItem
from messaging.models.uploads import Upload
from messaging.models.users import Connection, User, WsTicket

__all__ = [
    "Connection",
    "Conversation",
    "ConversationMember",
    "ItemStatus",
    "Message",
    "PendingItem",
    "StreamCounter",
    "StreamItem",
    "Upload",
    "User",
    "WsTicket",
]
