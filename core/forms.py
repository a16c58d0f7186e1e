from django import forms

from core.models import Post


class PostForm(forms.ModelForm[Post]):
    # Declared, not derived: the model's default lives in the database (db_default), so a
    # derived field would start at a blank "---------" choice instead of the table's default.
    visibility = forms.ChoiceField(choices=Post.Visibility.choices, initial=Post.Visibility.PUBLIC)

    class Meta:
        model = Post
        fields = ["body", "visibility"]
        widgets = {"body": forms.Textarea(attrs={"rows": 3, "placeholder": "What's new?"})}
