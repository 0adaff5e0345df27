"""factory_boy factories: the data behind the fixtures in conftest.py."""

from __future__ import annotations

import factory
from rest_framework.authtoken.models import Token

from messaging.models import Conversation, ConversationMember, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.LazyAttribute(lambda u: u.username.title())
    password = factory.django.Password("correct-horse-battery")


class TokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Token

    user = factory.SubFactory(UserFactory)


class GroupFactory(factory.django.DjangoModelFactory):
    """A group conversation; pass members=[...] to fill it."""

    class Meta:
        model = Conversation
        skip_postgeneration_save = True

    kind = Conversation.Kind.GROUP
    title = factory.Sequence(lambda n: f"Group {n}")

    @factory.post_generation
    def members(self, create: bool, extracted: list[User] | None, **kwargs: object) -> None:
        if create and extracted:
            ConversationMember.objects.bulk_create(
                [ConversationMember(conversation=self, user=user) for user in extracted]
            )
