from django.urls import path

from messaging.consumers import IMSConsumer

websocket_urlpatterns = [
    path("ws/", IMSConsumer.as_asgi()),
]
