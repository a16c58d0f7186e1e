from django import forms

from core.models import Post


class PostForm(forms.ModelForm[Post]):
    class Meta:
        model = Post
        fields = ["body", "visibility"]
        widgets = {"body": forms.Textarea(attrs={"rows": 3, "placeholder": "What's new?"})}
