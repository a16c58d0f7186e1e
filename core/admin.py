from django.contrib import admin

from core.models import Article, Post


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin[Article]):
    list_display = ["title", "category", "source", "published_at"]
    list_filter = ["category", "source"]
    search_fields = ["title", "body"]


@admin.register(Post)
class PostAdmin(admin.ModelAdmin[Post]):
    list_display = ["author", "visibility", "created_at", "body"]
    list_filter = ["visibility"]
    raw_id_fields = ["author"]
