"""wa-inbox: WhatsApp (360dialog) shared inbox backend on Supabase."""
