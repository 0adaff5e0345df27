from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from messaging.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Profile", {"fields": ("display_name", "time_zone")}))
    list_display = ("username", "display_name", "email", "is_staff", "is_active")
