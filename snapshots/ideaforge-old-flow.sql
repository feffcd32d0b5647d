-- runner:snapshot
-- The schema of database agentic_pm_db (PostgreSQL 18.6) with its migration history: 18 recorded migrations, the last 20251202000000_add_mckinsey_sso_fields.sql.
-- Taken by `python -m runner snapshot` with pg_dump 18. Loaded only into an empty database (--snapshot / MIGRATION_SNAPSHOT), in one
-- transaction; later migrations then apply as usual. Do not edit it: take a new one.
--
-- PostgreSQL database dump
--


-- Dumped from database version 18.6
-- Dumped by pg_dump version 18.6

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: uuid-ossp; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA public;


--
-- Name: EXTENSION "uuid-ossp"; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION "uuid-ossp" IS 'test stand-in for uuid-ossp: uuid_generate_v4() only';


--
-- Name: vector; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;


--
-- Name: EXTENSION vector; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION vector IS 'vector data type and ivfflat and hnsw access methods';


--
-- Name: can_user_access_product(uuid, uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.can_user_access_product(product_uuid uuid, user_uuid uuid) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
BEGIN
  RETURN EXISTS (
    SELECT 1 FROM products p
    WHERE p.id = product_uuid
    AND (
      p.user_id = user_uuid
      OR p.id IN (
        SELECT product_id FROM product_shares 
        WHERE shared_with_user_id = user_uuid
      )
    )
    AND p.tenant_id = (
      SELECT tenant_id FROM user_profiles WHERE id = user_uuid
    )
  );
END;
$$;


--
-- Name: get_current_user_tenant_id(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.get_current_user_tenant_id() RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
BEGIN
  RETURN (
    SELECT tenant_id FROM user_profiles 
    WHERE id = current_setting('app.current_user_id', true)::uuid
  );
END;
$$;


--
-- Name: search_knowledge_articles(public.vector, double precision, integer, uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.search_knowledge_articles(query_embedding public.vector, match_threshold double precision DEFAULT 0.7, match_count integer DEFAULT 5, filter_product_id uuid DEFAULT NULL::uuid) RETURNS TABLE(id uuid, product_id uuid, title text, content text, source text, similarity double precision, metadata jsonb)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
  RETURN QUERY
  SELECT
    knowledge_articles.id,
    knowledge_articles.product_id,
    knowledge_articles.title,
    knowledge_articles.content,
    knowledge_articles.source,
    1 - (knowledge_articles.embedding <=> query_embedding) AS similarity,
    knowledge_articles.metadata
  FROM knowledge_articles
  WHERE 
    (filter_product_id IS NULL OR knowledge_articles.product_id = filter_product_id)
    AND 1 - (knowledge_articles.embedding <=> query_embedding) > match_threshold
  ORDER BY knowledge_articles.embedding <=> query_embedding
  LIMIT match_count;
END;
$$;


--
-- Name: update_updated_at_column(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.update_updated_at_column() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END;
$$;


--
-- Name: update_user_api_keys_updated_at(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.update_user_api_keys_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END;
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: agent_activity_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.agent_activity_log (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    user_id uuid NOT NULL,
    product_id uuid,
    agent_type text NOT NULL,
    action text NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now()
);


--
-- Name: agent_interactions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.agent_interactions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    session_id uuid NOT NULL,
    source_agent text NOT NULL,
    target_agent text NOT NULL,
    interaction_type text NOT NULL,
    message_id uuid,
    metadata jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    CONSTRAINT agent_interactions_interaction_type_check CHECK ((interaction_type = ANY (ARRAY['request'::text, 'response'::text, 'consultation'::text, 'delegation'::text])))
);


--
-- Name: agent_messages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.agent_messages (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    session_id uuid NOT NULL,
    role text NOT NULL,
    content text NOT NULL,
    agent_role text,
    metadata jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    agent_type text,
    parent_message_id uuid,
    is_internal boolean DEFAULT false,
    target_agent text,
    CONSTRAINT agent_messages_role_check CHECK ((role = ANY (ARRAY['user'::text, 'assistant'::text, 'system'::text])))
);


--
-- Name: conversation_history; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.conversation_history (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    session_id uuid NOT NULL,
    product_id uuid,
    phase_id uuid,
    message_type text NOT NULL,
    agent_name text,
    agent_role text,
    content text NOT NULL,
    formatted_content text,
    parent_message_id uuid,
    interaction_metadata jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    tenant_id uuid,
    CONSTRAINT conversation_history_message_type_check CHECK ((message_type = ANY (ARRAY['user'::text, 'agent'::text, 'system'::text])))
);


--
-- Name: conversation_sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.conversation_sessions (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    user_id uuid NOT NULL,
    product_id uuid,
    title text,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    tenant_id uuid
);


--
-- Name: design_mockups; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.design_mockups (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    product_id uuid NOT NULL,
    phase_submission_id uuid,
    user_id uuid NOT NULL,
    provider text NOT NULL,
    prompt text NOT NULL,
    image_url text,
    thumbnail_url text,
    metadata jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    tenant_id uuid NOT NULL,
    v0_chat_id text,
    v0_project_id text,
    project_status text DEFAULT 'pending'::text,
    project_url text,
    CONSTRAINT design_mockups_project_status_check CHECK ((project_status = ANY (ARRAY['pending'::text, 'in_progress'::text, 'completed'::text, 'failed'::text, 'timeout'::text]))),
    CONSTRAINT design_mockups_provider_check CHECK ((provider = ANY (ARRAY['v0'::text, 'lovable'::text])))
);


--
-- Name: COLUMN design_mockups.v0_chat_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.design_mockups.v0_chat_id IS 'V0 API chat_id for tracking and status polling';


--
-- Name: COLUMN design_mockups.v0_project_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.design_mockups.v0_project_id IS 'V0 API project_id if different from chat_id';


--
-- Name: COLUMN design_mockups.project_status; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.design_mockups.project_status IS 'Status of prototype generation: pending, in_progress, completed, failed, timeout';


--
-- Name: COLUMN design_mockups.project_url; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.design_mockups.project_url IS 'Main prototype URL (demo_url, web_url, or chat_url)';


--
-- Name: exported_documents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.exported_documents (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    product_id uuid NOT NULL,
    user_id uuid NOT NULL,
    document_type text NOT NULL,
    title text NOT NULL,
    content text NOT NULL,
    formatted_html text,
    pdf_url text,
    version integer DEFAULT 1,
    metadata jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    CONSTRAINT exported_documents_document_type_check CHECK ((document_type = ANY (ARRAY['prd'::text, 'summary'::text, 'full_lifecycle'::text, 'phase_report'::text])))
);


--
-- Name: feedback_entries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.feedback_entries (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    product_id uuid NOT NULL,
    agent_type text NOT NULL,
    user_feedback text NOT NULL,
    rating integer,
    context jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    CONSTRAINT feedback_entries_rating_check CHECK (((rating >= 1) AND (rating <= 5)))
);


--
-- Name: knowledge_articles; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.knowledge_articles (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    product_id uuid NOT NULL,
    title text NOT NULL,
    content text NOT NULL,
    source text NOT NULL,
    embedding public.vector(1536),
    metadata jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    CONSTRAINT knowledge_articles_source_check CHECK ((source = ANY (ARRAY['manual'::text, 'jira'::text, 'confluence'::text, 'github'::text, 'local_upload'::text])))
);


--
-- Name: multi_agent_sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.multi_agent_sessions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    conversation_id uuid NOT NULL,
    active_agents text[] DEFAULT '{}'::text[] NOT NULL,
    coordination_mode text NOT NULL,
    current_phase text DEFAULT 'ideation'::text,
    metadata jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    CONSTRAINT multi_agent_sessions_coordination_mode_check CHECK ((coordination_mode = ANY (ARRAY['sequential'::text, 'parallel'::text, 'collaborative'::text, 'debate'::text])))
);


--
-- Name: phase_submissions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.phase_submissions (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    product_id uuid NOT NULL,
    phase_id uuid NOT NULL,
    user_id uuid NOT NULL,
    form_data jsonb DEFAULT '{}'::jsonb NOT NULL,
    generated_content text,
    status text DEFAULT 'draft'::text,
    metadata jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    tenant_id uuid NOT NULL,
    CONSTRAINT phase_submissions_status_check CHECK ((status = ANY (ARRAY['draft'::text, 'in_progress'::text, 'completed'::text, 'reviewed'::text])))
);


--
-- Name: prd_documents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.prd_documents (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    product_id uuid NOT NULL,
    title text NOT NULL,
    content jsonb DEFAULT '{}'::jsonb NOT NULL,
    version integer DEFAULT 1,
    status text DEFAULT 'draft'::text,
    created_by uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    CONSTRAINT prd_documents_status_check CHECK ((status = ANY (ARRAY['draft'::text, 'in_review'::text, 'approved'::text, 'published'::text])))
);


--
-- Name: product_idea_scores; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.product_idea_scores (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    product_id uuid NOT NULL,
    tenant_id uuid,
    overall_score numeric(5,2),
    success_probability numeric(5,2),
    scoring_data jsonb DEFAULT '{}'::jsonb NOT NULL,
    recommendations jsonb DEFAULT '[]'::jsonb,
    success_factors jsonb DEFAULT '[]'::jsonb,
    risk_factors jsonb DEFAULT '[]'::jsonb,
    scoring_criteria jsonb DEFAULT '{}'::jsonb,
    created_by uuid,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    CONSTRAINT product_idea_scores_overall_score_check CHECK (((overall_score >= (0)::numeric) AND (overall_score <= (100)::numeric))),
    CONSTRAINT product_idea_scores_success_probability_check CHECK (((success_probability >= (0)::numeric) AND (success_probability <= (100)::numeric)))
);


--
-- Name: TABLE product_idea_scores; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.product_idea_scores IS 'Stores product idea scores with detailed breakdown following industry standards';


--
-- Name: product_lifecycle_phases; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.product_lifecycle_phases (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    phase_name text NOT NULL,
    phase_order integer NOT NULL,
    description text NOT NULL,
    icon text DEFAULT '📋'::text,
    required_fields jsonb DEFAULT '[]'::jsonb,
    template_prompts jsonb DEFAULT '[]'::jsonb,
    created_at timestamp with time zone DEFAULT now()
);


--
-- Name: product_prd_documents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.product_prd_documents (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    product_id uuid NOT NULL,
    tenant_id uuid,
    version integer DEFAULT 1,
    prd_template text DEFAULT 'industry_standard'::text,
    standards jsonb DEFAULT '["BCS", "ICAgile", "AIPMM", "Pragmatic Institute"]'::jsonb,
    prd_content jsonb DEFAULT '{}'::jsonb NOT NULL,
    summary_id uuid,
    score_id uuid,
    status text DEFAULT 'draft'::text,
    created_by uuid,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    CONSTRAINT product_prd_documents_status_check CHECK ((status = ANY (ARRAY['draft'::text, 'in_review'::text, 'approved'::text, 'published'::text])))
);


--
-- Name: TABLE product_prd_documents; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.product_prd_documents IS 'Stores PRD documents following industry-standard templates';


--
-- Name: product_shares; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.product_shares (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    product_id uuid NOT NULL,
    shared_with_user_id uuid NOT NULL,
    shared_by_user_id uuid NOT NULL,
    permission text DEFAULT 'view'::text,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    CONSTRAINT product_shares_permission_check CHECK ((permission = ANY (ARRAY['view'::text, 'edit'::text, 'admin'::text])))
);


--
-- Name: product_summaries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.product_summaries (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    product_id uuid NOT NULL,
    tenant_id uuid,
    summary_type text DEFAULT 'multi_session'::text,
    session_ids uuid[] DEFAULT '{}'::uuid[],
    summary_content text NOT NULL,
    summary_metadata jsonb DEFAULT '{}'::jsonb,
    created_by uuid,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    CONSTRAINT product_summaries_summary_type_check CHECK ((summary_type = ANY (ARRAY['single_session'::text, 'multi_session'::text, 'product_overview'::text])))
);


--
-- Name: TABLE product_summaries; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.product_summaries IS 'Stores summaries from single or multiple conversation sessions';


--
-- Name: products; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.products (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    user_id uuid NOT NULL,
    name text NOT NULL,
    description text,
    status text DEFAULT 'ideation'::text,
    metadata jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    tenant_id uuid NOT NULL,
    CONSTRAINT products_status_check CHECK ((status = ANY (ARRAY['ideation'::text, 'build'::text, 'operate'::text, 'learn'::text, 'govern'::text, 'sunset'::text])))
);


--
-- Name: review_reports; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.review_reports (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    product_id uuid NOT NULL,
    user_id uuid NOT NULL,
    overall_score integer,
    status text DEFAULT 'ready'::text,
    phase_scores jsonb DEFAULT '[]'::jsonb,
    missing_sections jsonb DEFAULT '[]'::jsonb,
    recommendations jsonb DEFAULT '[]'::jsonb,
    summary text,
    report_data jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    CONSTRAINT review_reports_overall_score_check CHECK (((overall_score >= 0) AND (overall_score <= 100))),
    CONSTRAINT review_reports_status_check CHECK ((status = ANY (ARRAY['ready'::text, 'needs_attention'::text, 'in_progress'::text])))
);


--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    id integer NOT NULL,
    migration_name character varying(255) NOT NULL,
    applied_at timestamp with time zone DEFAULT now()
);


--
-- Name: schema_migrations_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.schema_migrations_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: schema_migrations_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.schema_migrations_id_seq OWNED BY public.schema_migrations.id;


--
-- Name: session_selections; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.session_selections (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    product_id uuid NOT NULL,
    user_id uuid NOT NULL,
    selected_session_ids uuid[] DEFAULT '{}'::uuid[] NOT NULL,
    selection_purpose text,
    created_at timestamp with time zone DEFAULT now()
);


--
-- Name: TABLE session_selections; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.session_selections IS 'Tracks which sessions users select for multi-session operations';


--
-- Name: tenants; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tenants (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    name text NOT NULL,
    slug text NOT NULL,
    description text,
    metadata jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now()
);


--
-- Name: user_api_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_api_keys (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    user_id uuid NOT NULL,
    provider text NOT NULL,
    api_key_encrypted text NOT NULL,
    is_active boolean DEFAULT true,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    metadata jsonb DEFAULT '{}'::jsonb,
    CONSTRAINT user_api_keys_provider_check CHECK ((provider = ANY (ARRAY['openai'::text, 'anthropic'::text, 'google'::text, 'v0'::text, 'lovable'::text, 'github'::text, 'atlassian'::text, 'ai_gateway'::text])))
);


--
-- Name: COLUMN user_api_keys.api_key_encrypted; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.user_api_keys.api_key_encrypted IS 'For AI Gateway: stores encrypted client_id. client_secret is stored in metadata.client_secret';


--
-- Name: COLUMN user_api_keys.metadata; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.user_api_keys.metadata IS 'For AI Gateway: stores JSON with client_secret and optionally base_url, default_model';


--
-- Name: user_preferences; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_preferences (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    user_id uuid NOT NULL,
    theme text DEFAULT 'light'::text,
    language text DEFAULT 'en'::text,
    notifications_enabled boolean DEFAULT true,
    email_notifications boolean DEFAULT false,
    preferences jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    CONSTRAINT user_preferences_theme_check CHECK ((theme = ANY (ARRAY['light'::text, 'dark'::text, 'retro'::text])))
);


--
-- Name: user_profiles; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_profiles (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    email text NOT NULL,
    full_name text,
    persona text DEFAULT 'product_manager'::text,
    preferences jsonb DEFAULT '{}'::jsonb,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    password_hash text,
    tenant_id uuid,
    is_active boolean DEFAULT true,
    last_login_at timestamp with time zone,
    auth_provider text DEFAULT 'local'::text,
    external_id text,
    avatar_url text,
    mckinsey_subject character varying(255),
    mckinsey_email character varying(255),
    mckinsey_refresh_token_encrypted text,
    mckinsey_token_expires_at timestamp without time zone,
    mckinsey_fmno character varying(100),
    mckinsey_preferred_username character varying(255),
    mckinsey_session_state character varying(255),
    CONSTRAINT user_profiles_auth_provider_check CHECK ((auth_provider = ANY (ARRAY['local'::text, 'github'::text, 'okta'::text, 'oauth'::text]))),
    CONSTRAINT user_profiles_persona_check CHECK ((persona = ANY (ARRAY['product_manager'::text, 'leadership'::text, 'tech_lead'::text])))
);


--
-- Name: COLUMN user_profiles.mckinsey_subject; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.user_profiles.mckinsey_subject IS 'Unique McKinsey user identifier from OIDC sub claim';


--
-- Name: COLUMN user_profiles.mckinsey_email; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.user_profiles.mckinsey_email IS 'McKinsey email address from OIDC email claim';


--
-- Name: COLUMN user_profiles.mckinsey_refresh_token_encrypted; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.user_profiles.mckinsey_refresh_token_encrypted IS 'Encrypted McKinsey refresh token (Fernet encryption)';


--
-- Name: COLUMN user_profiles.mckinsey_token_expires_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.user_profiles.mckinsey_token_expires_at IS 'McKinsey access token expiration timestamp';


--
-- Name: COLUMN user_profiles.mckinsey_fmno; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.user_profiles.mckinsey_fmno IS 'McKinsey firm member number (employee ID) from fmno claim';


--
-- Name: COLUMN user_profiles.mckinsey_preferred_username; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.user_profiles.mckinsey_preferred_username IS 'McKinsey preferred username from preferred_username claim';


--
-- Name: COLUMN user_profiles.mckinsey_session_state; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.user_profiles.mckinsey_session_state IS 'Keycloak session state from session_state claim';


--
-- Name: schema_migrations id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations ALTER COLUMN id SET DEFAULT nextval('public.schema_migrations_id_seq'::regclass);


--
-- Name: agent_activity_log agent_activity_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_activity_log
    ADD CONSTRAINT agent_activity_log_pkey PRIMARY KEY (id);


--
-- Name: agent_interactions agent_interactions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_interactions
    ADD CONSTRAINT agent_interactions_pkey PRIMARY KEY (id);


--
-- Name: agent_messages agent_messages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_messages
    ADD CONSTRAINT agent_messages_pkey PRIMARY KEY (id);


--
-- Name: conversation_history conversation_history_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_history
    ADD CONSTRAINT conversation_history_pkey PRIMARY KEY (id);


--
-- Name: conversation_sessions conversation_sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_sessions
    ADD CONSTRAINT conversation_sessions_pkey PRIMARY KEY (id);


--
-- Name: design_mockups design_mockups_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.design_mockups
    ADD CONSTRAINT design_mockups_pkey PRIMARY KEY (id);


--
-- Name: exported_documents exported_documents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.exported_documents
    ADD CONSTRAINT exported_documents_pkey PRIMARY KEY (id);


--
-- Name: feedback_entries feedback_entries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.feedback_entries
    ADD CONSTRAINT feedback_entries_pkey PRIMARY KEY (id);


--
-- Name: knowledge_articles knowledge_articles_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.knowledge_articles
    ADD CONSTRAINT knowledge_articles_pkey PRIMARY KEY (id);


--
-- Name: multi_agent_sessions multi_agent_sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.multi_agent_sessions
    ADD CONSTRAINT multi_agent_sessions_pkey PRIMARY KEY (id);


--
-- Name: phase_submissions phase_submissions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.phase_submissions
    ADD CONSTRAINT phase_submissions_pkey PRIMARY KEY (id);


--
-- Name: phase_submissions phase_submissions_product_id_phase_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.phase_submissions
    ADD CONSTRAINT phase_submissions_product_id_phase_id_key UNIQUE (product_id, phase_id);


--
-- Name: prd_documents prd_documents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.prd_documents
    ADD CONSTRAINT prd_documents_pkey PRIMARY KEY (id);


--
-- Name: product_idea_scores product_idea_scores_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_idea_scores
    ADD CONSTRAINT product_idea_scores_pkey PRIMARY KEY (id);


--
-- Name: product_idea_scores product_idea_scores_product_id_created_at_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_idea_scores
    ADD CONSTRAINT product_idea_scores_product_id_created_at_key UNIQUE (product_id, created_at);


--
-- Name: product_lifecycle_phases product_lifecycle_phases_phase_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_lifecycle_phases
    ADD CONSTRAINT product_lifecycle_phases_phase_name_key UNIQUE (phase_name);


--
-- Name: product_lifecycle_phases product_lifecycle_phases_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_lifecycle_phases
    ADD CONSTRAINT product_lifecycle_phases_pkey PRIMARY KEY (id);


--
-- Name: product_prd_documents product_prd_documents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_prd_documents
    ADD CONSTRAINT product_prd_documents_pkey PRIMARY KEY (id);


--
-- Name: product_shares product_shares_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_shares
    ADD CONSTRAINT product_shares_pkey PRIMARY KEY (id);


--
-- Name: product_shares product_shares_product_id_shared_with_user_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_shares
    ADD CONSTRAINT product_shares_product_id_shared_with_user_id_key UNIQUE (product_id, shared_with_user_id);


--
-- Name: product_summaries product_summaries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_summaries
    ADD CONSTRAINT product_summaries_pkey PRIMARY KEY (id);


--
-- Name: products products_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.products
    ADD CONSTRAINT products_pkey PRIMARY KEY (id);


--
-- Name: review_reports review_reports_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.review_reports
    ADD CONSTRAINT review_reports_pkey PRIMARY KEY (id);


--
-- Name: review_reports review_reports_product_id_user_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.review_reports
    ADD CONSTRAINT review_reports_product_id_user_id_key UNIQUE (product_id, user_id);


--
-- Name: schema_migrations schema_migrations_migration_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_migration_name_key UNIQUE (migration_name);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (id);


--
-- Name: session_selections session_selections_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.session_selections
    ADD CONSTRAINT session_selections_pkey PRIMARY KEY (id);


--
-- Name: tenants tenants_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tenants
    ADD CONSTRAINT tenants_name_key UNIQUE (name);


--
-- Name: tenants tenants_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tenants
    ADD CONSTRAINT tenants_pkey PRIMARY KEY (id);


--
-- Name: tenants tenants_slug_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tenants
    ADD CONSTRAINT tenants_slug_key UNIQUE (slug);


--
-- Name: user_api_keys user_api_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_api_keys
    ADD CONSTRAINT user_api_keys_pkey PRIMARY KEY (id);


--
-- Name: user_api_keys user_api_keys_user_id_provider_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_api_keys
    ADD CONSTRAINT user_api_keys_user_id_provider_key UNIQUE (user_id, provider);


--
-- Name: user_preferences user_preferences_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_preferences
    ADD CONSTRAINT user_preferences_pkey PRIMARY KEY (id);


--
-- Name: user_preferences user_preferences_user_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_preferences
    ADD CONSTRAINT user_preferences_user_id_key UNIQUE (user_id);


--
-- Name: user_profiles user_profiles_email_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_profiles
    ADD CONSTRAINT user_profiles_email_key UNIQUE (email);


--
-- Name: user_profiles user_profiles_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_profiles
    ADD CONSTRAINT user_profiles_pkey PRIMARY KEY (id);


--
-- Name: idx_agent_activity_log_product_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_agent_activity_log_product_id ON public.agent_activity_log USING btree (product_id);


--
-- Name: idx_agent_activity_log_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_agent_activity_log_user_id ON public.agent_activity_log USING btree (user_id);


--
-- Name: idx_agent_interactions_session_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_agent_interactions_session_id ON public.agent_interactions USING btree (session_id);


--
-- Name: idx_agent_interactions_source_agent; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_agent_interactions_source_agent ON public.agent_interactions USING btree (source_agent);


--
-- Name: idx_agent_interactions_target_agent; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_agent_interactions_target_agent ON public.agent_interactions USING btree (target_agent);


--
-- Name: idx_agent_messages_agent_type; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_agent_messages_agent_type ON public.agent_messages USING btree (agent_type);


--
-- Name: idx_agent_messages_parent_message_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_agent_messages_parent_message_id ON public.agent_messages USING btree (parent_message_id);


--
-- Name: idx_agent_messages_session_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_agent_messages_session_id ON public.agent_messages USING btree (session_id);


--
-- Name: idx_conversation_history_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_conversation_history_created_at ON public.conversation_history USING btree (created_at DESC);


--
-- Name: idx_conversation_history_phase_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_conversation_history_phase_id ON public.conversation_history USING btree (phase_id);


--
-- Name: idx_conversation_history_product_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_conversation_history_product_id ON public.conversation_history USING btree (product_id);


--
-- Name: idx_conversation_history_session_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_conversation_history_session_id ON public.conversation_history USING btree (session_id);


--
-- Name: idx_conversation_history_tenant_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_conversation_history_tenant_id ON public.conversation_history USING btree (tenant_id);


--
-- Name: idx_conversation_sessions_product_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_conversation_sessions_product_id ON public.conversation_sessions USING btree (product_id);


--
-- Name: idx_conversation_sessions_tenant; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_conversation_sessions_tenant ON public.conversation_sessions USING btree (tenant_id);


--
-- Name: idx_conversation_sessions_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_conversation_sessions_user_id ON public.conversation_sessions USING btree (user_id);


--
-- Name: idx_design_mockups_phase_submission_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_design_mockups_phase_submission_id ON public.design_mockups USING btree (phase_submission_id);


--
-- Name: idx_design_mockups_product_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_design_mockups_product_id ON public.design_mockups USING btree (product_id);


--
-- Name: idx_design_mockups_product_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_design_mockups_product_status ON public.design_mockups USING btree (product_id, project_status);


--
-- Name: idx_design_mockups_provider; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_design_mockups_provider ON public.design_mockups USING btree (provider);


--
-- Name: idx_design_mockups_tenant_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_design_mockups_tenant_id ON public.design_mockups USING btree (tenant_id);


--
-- Name: idx_design_mockups_user_product; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_design_mockups_user_product ON public.design_mockups USING btree (user_id, product_id);


--
-- Name: idx_design_mockups_v0_chat_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_design_mockups_v0_chat_id ON public.design_mockups USING btree (v0_chat_id) WHERE (v0_chat_id IS NOT NULL);


--
-- Name: idx_exported_documents_product_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_exported_documents_product_id ON public.exported_documents USING btree (product_id);


--
-- Name: idx_exported_documents_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_exported_documents_user_id ON public.exported_documents USING btree (user_id);


--
-- Name: idx_feedback_entries_product_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_feedback_entries_product_id ON public.feedback_entries USING btree (product_id);


--
-- Name: idx_knowledge_articles_embedding; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_knowledge_articles_embedding ON public.knowledge_articles USING ivfflat (embedding public.vector_cosine_ops) WITH (lists='100');


--
-- Name: idx_knowledge_articles_product_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_knowledge_articles_product_id ON public.knowledge_articles USING btree (product_id);


--
-- Name: idx_multi_agent_sessions_conversation_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_multi_agent_sessions_conversation_id ON public.multi_agent_sessions USING btree (conversation_id);


--
-- Name: idx_phase_submissions_phase_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_phase_submissions_phase_id ON public.phase_submissions USING btree (phase_id);


--
-- Name: idx_phase_submissions_product_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_phase_submissions_product_id ON public.phase_submissions USING btree (product_id);


--
-- Name: idx_phase_submissions_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_phase_submissions_status ON public.phase_submissions USING btree (status);


--
-- Name: idx_phase_submissions_tenant_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_phase_submissions_tenant_id ON public.phase_submissions USING btree (tenant_id);


--
-- Name: idx_phase_submissions_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_phase_submissions_user_id ON public.phase_submissions USING btree (user_id);


--
-- Name: idx_prd_documents_created_by; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_prd_documents_created_by ON public.prd_documents USING btree (created_by);


--
-- Name: idx_prd_documents_product_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_prd_documents_product_id ON public.prd_documents USING btree (product_id);


--
-- Name: idx_prd_documents_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_prd_documents_status ON public.prd_documents USING btree (status);


--
-- Name: idx_product_idea_scores_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_product_idea_scores_created_at ON public.product_idea_scores USING btree (created_at DESC);


--
-- Name: idx_product_idea_scores_product; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_product_idea_scores_product ON public.product_idea_scores USING btree (product_id);


--
-- Name: idx_product_idea_scores_tenant; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_product_idea_scores_tenant ON public.product_idea_scores USING btree (tenant_id);


--
-- Name: idx_product_prd_documents_product; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_product_prd_documents_product ON public.product_prd_documents USING btree (product_id);


--
-- Name: idx_product_prd_documents_tenant; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_product_prd_documents_tenant ON public.product_prd_documents USING btree (tenant_id);


--
-- Name: idx_product_shares_product_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_product_shares_product_id ON public.product_shares USING btree (product_id);


--
-- Name: idx_product_shares_shared_by_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_product_shares_shared_by_user_id ON public.product_shares USING btree (shared_by_user_id);


--
-- Name: idx_product_shares_shared_with_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_product_shares_shared_with_user_id ON public.product_shares USING btree (shared_with_user_id);


--
-- Name: idx_product_summaries_product; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_product_summaries_product ON public.product_summaries USING btree (product_id);


--
-- Name: idx_product_summaries_session_ids; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_product_summaries_session_ids ON public.product_summaries USING gin (session_ids);


--
-- Name: idx_product_summaries_tenant; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_product_summaries_tenant ON public.product_summaries USING btree (tenant_id);


--
-- Name: idx_products_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_products_status ON public.products USING btree (status);


--
-- Name: idx_products_tenant_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_products_tenant_id ON public.products USING btree (tenant_id);


--
-- Name: idx_products_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_products_user_id ON public.products USING btree (user_id);


--
-- Name: idx_review_reports_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_review_reports_created_at ON public.review_reports USING btree (created_at DESC);


--
-- Name: idx_review_reports_product_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_review_reports_product_id ON public.review_reports USING btree (product_id);


--
-- Name: idx_review_reports_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_review_reports_user_id ON public.review_reports USING btree (user_id);


--
-- Name: idx_session_selections_product; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_session_selections_product ON public.session_selections USING btree (product_id);


--
-- Name: idx_session_selections_user; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_session_selections_user ON public.session_selections USING btree (user_id);


--
-- Name: idx_tenants_slug; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_tenants_slug ON public.tenants USING btree (slug);


--
-- Name: idx_user_api_keys_metadata; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_user_api_keys_metadata ON public.user_api_keys USING gin (metadata);


--
-- Name: idx_user_api_keys_provider; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_user_api_keys_provider ON public.user_api_keys USING btree (provider);


--
-- Name: idx_user_api_keys_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_user_api_keys_user_id ON public.user_api_keys USING btree (user_id);


--
-- Name: idx_user_preferences_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_user_preferences_user_id ON public.user_preferences USING btree (user_id);


--
-- Name: idx_user_profiles_email; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_user_profiles_email ON public.user_profiles USING btree (email);


--
-- Name: idx_user_profiles_external_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_user_profiles_external_id ON public.user_profiles USING btree (external_id) WHERE (external_id IS NOT NULL);


--
-- Name: idx_user_profiles_mckinsey_email; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_user_profiles_mckinsey_email ON public.user_profiles USING btree (mckinsey_email) WHERE (mckinsey_email IS NOT NULL);


--
-- Name: INDEX idx_user_profiles_mckinsey_email; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.idx_user_profiles_mckinsey_email IS 'Index for McKinsey SSO user lookup by email';


--
-- Name: idx_user_profiles_mckinsey_fmno; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_user_profiles_mckinsey_fmno ON public.user_profiles USING btree (mckinsey_fmno) WHERE (mckinsey_fmno IS NOT NULL);


--
-- Name: INDEX idx_user_profiles_mckinsey_fmno; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.idx_user_profiles_mckinsey_fmno IS 'Index for McKinsey SSO user lookup by firm member number';


--
-- Name: idx_user_profiles_mckinsey_subject; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_user_profiles_mckinsey_subject ON public.user_profiles USING btree (mckinsey_subject) WHERE (mckinsey_subject IS NOT NULL);


--
-- Name: INDEX idx_user_profiles_mckinsey_subject; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.idx_user_profiles_mckinsey_subject IS 'Index for McKinsey SSO user lookup by subject (sub claim)';


--
-- Name: idx_user_profiles_tenant_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_user_profiles_tenant_id ON public.user_profiles USING btree (tenant_id);


--
-- Name: conversation_sessions update_conversation_sessions_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER update_conversation_sessions_updated_at BEFORE UPDATE ON public.conversation_sessions FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();


--
-- Name: design_mockups update_design_mockups_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER update_design_mockups_updated_at BEFORE UPDATE ON public.design_mockups FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();


--
-- Name: exported_documents update_exported_documents_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER update_exported_documents_updated_at BEFORE UPDATE ON public.exported_documents FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();


--
-- Name: multi_agent_sessions update_multi_agent_sessions_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER update_multi_agent_sessions_updated_at BEFORE UPDATE ON public.multi_agent_sessions FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();


--
-- Name: phase_submissions update_phase_submissions_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER update_phase_submissions_updated_at BEFORE UPDATE ON public.phase_submissions FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();


--
-- Name: prd_documents update_prd_documents_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER update_prd_documents_updated_at BEFORE UPDATE ON public.prd_documents FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();


--
-- Name: product_shares update_product_shares_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER update_product_shares_updated_at BEFORE UPDATE ON public.product_shares FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();


--
-- Name: products update_products_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER update_products_updated_at BEFORE UPDATE ON public.products FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();


--
-- Name: tenants update_tenants_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER update_tenants_updated_at BEFORE UPDATE ON public.tenants FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();


--
-- Name: user_api_keys update_user_api_keys_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER update_user_api_keys_updated_at BEFORE UPDATE ON public.user_api_keys FOR EACH ROW EXECUTE FUNCTION public.update_user_api_keys_updated_at();


--
-- Name: user_preferences update_user_preferences_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER update_user_preferences_updated_at BEFORE UPDATE ON public.user_preferences FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();


--
-- Name: user_profiles update_user_profiles_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER update_user_profiles_updated_at BEFORE UPDATE ON public.user_profiles FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();


--
-- Name: agent_activity_log agent_activity_log_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_activity_log
    ADD CONSTRAINT agent_activity_log_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE SET NULL;


--
-- Name: agent_activity_log agent_activity_log_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_activity_log
    ADD CONSTRAINT agent_activity_log_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_profiles(id) ON DELETE CASCADE;


--
-- Name: agent_interactions agent_interactions_message_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_interactions
    ADD CONSTRAINT agent_interactions_message_id_fkey FOREIGN KEY (message_id) REFERENCES public.agent_messages(id) ON DELETE CASCADE;


--
-- Name: agent_interactions agent_interactions_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_interactions
    ADD CONSTRAINT agent_interactions_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.conversation_sessions(id) ON DELETE CASCADE;


--
-- Name: agent_messages agent_messages_parent_message_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_messages
    ADD CONSTRAINT agent_messages_parent_message_id_fkey FOREIGN KEY (parent_message_id) REFERENCES public.agent_messages(id) ON DELETE SET NULL;


--
-- Name: agent_messages agent_messages_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_messages
    ADD CONSTRAINT agent_messages_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.conversation_sessions(id) ON DELETE CASCADE;


--
-- Name: conversation_history conversation_history_parent_message_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_history
    ADD CONSTRAINT conversation_history_parent_message_id_fkey FOREIGN KEY (parent_message_id) REFERENCES public.conversation_history(id) ON DELETE SET NULL;


--
-- Name: conversation_history conversation_history_phase_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_history
    ADD CONSTRAINT conversation_history_phase_id_fkey FOREIGN KEY (phase_id) REFERENCES public.product_lifecycle_phases(id) ON DELETE SET NULL;


--
-- Name: conversation_history conversation_history_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_history
    ADD CONSTRAINT conversation_history_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE SET NULL;


--
-- Name: conversation_history conversation_history_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_history
    ADD CONSTRAINT conversation_history_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.conversation_sessions(id) ON DELETE CASCADE;


--
-- Name: conversation_history conversation_history_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_history
    ADD CONSTRAINT conversation_history_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE RESTRICT;


--
-- Name: conversation_sessions conversation_sessions_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_sessions
    ADD CONSTRAINT conversation_sessions_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE SET NULL;


--
-- Name: conversation_sessions conversation_sessions_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_sessions
    ADD CONSTRAINT conversation_sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_profiles(id) ON DELETE CASCADE;


--
-- Name: design_mockups design_mockups_phase_submission_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.design_mockups
    ADD CONSTRAINT design_mockups_phase_submission_id_fkey FOREIGN KEY (phase_submission_id) REFERENCES public.phase_submissions(id) ON DELETE CASCADE;


--
-- Name: design_mockups design_mockups_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.design_mockups
    ADD CONSTRAINT design_mockups_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE CASCADE;


--
-- Name: design_mockups design_mockups_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.design_mockups
    ADD CONSTRAINT design_mockups_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE RESTRICT;


--
-- Name: exported_documents exported_documents_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.exported_documents
    ADD CONSTRAINT exported_documents_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE CASCADE;


--
-- Name: feedback_entries feedback_entries_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.feedback_entries
    ADD CONSTRAINT feedback_entries_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE CASCADE;


--
-- Name: knowledge_articles knowledge_articles_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.knowledge_articles
    ADD CONSTRAINT knowledge_articles_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE CASCADE;


--
-- Name: multi_agent_sessions multi_agent_sessions_conversation_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.multi_agent_sessions
    ADD CONSTRAINT multi_agent_sessions_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES public.conversation_sessions(id) ON DELETE CASCADE;


--
-- Name: phase_submissions phase_submissions_phase_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.phase_submissions
    ADD CONSTRAINT phase_submissions_phase_id_fkey FOREIGN KEY (phase_id) REFERENCES public.product_lifecycle_phases(id) ON DELETE CASCADE;


--
-- Name: phase_submissions phase_submissions_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.phase_submissions
    ADD CONSTRAINT phase_submissions_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE CASCADE;


--
-- Name: phase_submissions phase_submissions_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.phase_submissions
    ADD CONSTRAINT phase_submissions_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE RESTRICT;


--
-- Name: prd_documents prd_documents_created_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.prd_documents
    ADD CONSTRAINT prd_documents_created_by_fkey FOREIGN KEY (created_by) REFERENCES public.user_profiles(id) ON DELETE CASCADE;


--
-- Name: prd_documents prd_documents_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.prd_documents
    ADD CONSTRAINT prd_documents_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE CASCADE;


--
-- Name: product_idea_scores product_idea_scores_created_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_idea_scores
    ADD CONSTRAINT product_idea_scores_created_by_fkey FOREIGN KEY (created_by) REFERENCES public.user_profiles(id) ON DELETE SET NULL;


--
-- Name: product_idea_scores product_idea_scores_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_idea_scores
    ADD CONSTRAINT product_idea_scores_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE CASCADE;


--
-- Name: product_prd_documents product_prd_documents_created_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_prd_documents
    ADD CONSTRAINT product_prd_documents_created_by_fkey FOREIGN KEY (created_by) REFERENCES public.user_profiles(id) ON DELETE SET NULL;


--
-- Name: product_prd_documents product_prd_documents_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_prd_documents
    ADD CONSTRAINT product_prd_documents_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE CASCADE;


--
-- Name: product_prd_documents product_prd_documents_score_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_prd_documents
    ADD CONSTRAINT product_prd_documents_score_id_fkey FOREIGN KEY (score_id) REFERENCES public.product_idea_scores(id) ON DELETE SET NULL;


--
-- Name: product_prd_documents product_prd_documents_summary_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_prd_documents
    ADD CONSTRAINT product_prd_documents_summary_id_fkey FOREIGN KEY (summary_id) REFERENCES public.product_summaries(id) ON DELETE SET NULL;


--
-- Name: product_shares product_shares_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_shares
    ADD CONSTRAINT product_shares_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE CASCADE;


--
-- Name: product_shares product_shares_shared_by_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_shares
    ADD CONSTRAINT product_shares_shared_by_user_id_fkey FOREIGN KEY (shared_by_user_id) REFERENCES public.user_profiles(id) ON DELETE CASCADE;


--
-- Name: product_shares product_shares_shared_with_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_shares
    ADD CONSTRAINT product_shares_shared_with_user_id_fkey FOREIGN KEY (shared_with_user_id) REFERENCES public.user_profiles(id) ON DELETE CASCADE;


--
-- Name: product_summaries product_summaries_created_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_summaries
    ADD CONSTRAINT product_summaries_created_by_fkey FOREIGN KEY (created_by) REFERENCES public.user_profiles(id) ON DELETE SET NULL;


--
-- Name: product_summaries product_summaries_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product_summaries
    ADD CONSTRAINT product_summaries_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE CASCADE;


--
-- Name: products products_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.products
    ADD CONSTRAINT products_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE RESTRICT;


--
-- Name: products products_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.products
    ADD CONSTRAINT products_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_profiles(id) ON DELETE CASCADE;


--
-- Name: review_reports review_reports_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.review_reports
    ADD CONSTRAINT review_reports_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE CASCADE;


--
-- Name: session_selections session_selections_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.session_selections
    ADD CONSTRAINT session_selections_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id) ON DELETE CASCADE;


--
-- Name: session_selections session_selections_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.session_selections
    ADD CONSTRAINT session_selections_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_profiles(id) ON DELETE CASCADE;


--
-- Name: user_api_keys user_api_keys_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_api_keys
    ADD CONSTRAINT user_api_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_profiles(id) ON DELETE CASCADE;


--
-- Name: user_preferences user_preferences_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_preferences
    ADD CONSTRAINT user_preferences_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.user_profiles(id) ON DELETE CASCADE;


--
-- Name: user_profiles user_profiles_tenant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_profiles
    ADD CONSTRAINT user_profiles_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE RESTRICT;


--
-- Name: product_lifecycle_phases Anyone can view lifecycle phases; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Anyone can view lifecycle phases" ON public.product_lifecycle_phases FOR SELECT USING (true);


--
-- Name: design_mockups Users can create design mockups; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can create design mockups" ON public.design_mockups FOR INSERT WITH CHECK (((tenant_id IN ( SELECT user_profiles.tenant_id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))) AND (user_id = (current_setting('app.current_user_id'::text, true))::uuid)));


--
-- Name: phase_submissions Users can create phase submissions; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can create phase submissions" ON public.phase_submissions FOR INSERT WITH CHECK (((tenant_id IN ( SELECT user_profiles.tenant_id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))) AND ((user_id = (current_setting('app.current_user_id'::text, true))::uuid) OR (product_id IN ( SELECT product_shares.product_id
   FROM public.product_shares
  WHERE ((product_shares.shared_with_user_id = (current_setting('app.current_user_id'::text, true))::uuid) AND (product_shares.permission = ANY (ARRAY['edit'::text, 'admin'::text]))))))));


--
-- Name: products Users can create products in own tenant; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can create products in own tenant" ON public.products FOR INSERT WITH CHECK (((tenant_id IN ( SELECT user_profiles.tenant_id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))) AND (user_id = (current_setting('app.current_user_id'::text, true))::uuid)));


--
-- Name: product_shares Users can create shares within tenant; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can create shares within tenant" ON public.product_shares FOR INSERT WITH CHECK (((product_id IN ( SELECT products.id
   FROM public.products
  WHERE ((products.tenant_id IN ( SELECT user_profiles.tenant_id
           FROM public.user_profiles
          WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))) AND (products.user_id = (current_setting('app.current_user_id'::text, true))::uuid)))) AND (shared_with_user_id IN ( SELECT user_profiles.id
   FROM public.user_profiles
  WHERE (user_profiles.tenant_id IN ( SELECT user_profiles_1.tenant_id
           FROM public.user_profiles user_profiles_1
          WHERE (user_profiles_1.id = (current_setting('app.current_user_id'::text, true))::uuid)))))));


--
-- Name: products Users can delete own products; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can delete own products" ON public.products FOR DELETE USING (((tenant_id IN ( SELECT user_profiles.tenant_id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))) AND (user_id = (current_setting('app.current_user_id'::text, true))::uuid)));


--
-- Name: product_shares Users can delete own shares; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can delete own shares" ON public.product_shares FOR DELETE USING ((product_id IN ( SELECT products.id
   FROM public.products
  WHERE (products.user_id = (current_setting('app.current_user_id'::text, true))::uuid))));


--
-- Name: user_preferences Users can insert own preferences; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can insert own preferences" ON public.user_preferences FOR INSERT WITH CHECK ((user_id = (current_setting('app.current_user_id'::text, true))::uuid));


--
-- Name: products Users can update own or shared products; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can update own or shared products" ON public.products FOR UPDATE USING (((tenant_id IN ( SELECT user_profiles.tenant_id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))) AND ((user_id = (current_setting('app.current_user_id'::text, true))::uuid) OR (id IN ( SELECT product_shares.product_id
   FROM public.product_shares
  WHERE ((product_shares.shared_with_user_id = (current_setting('app.current_user_id'::text, true))::uuid) AND (product_shares.permission = ANY (ARRAY['edit'::text, 'admin'::text])))))))) WITH CHECK (((tenant_id IN ( SELECT user_profiles.tenant_id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))) AND ((user_id = (current_setting('app.current_user_id'::text, true))::uuid) OR (id IN ( SELECT product_shares.product_id
   FROM public.product_shares
  WHERE ((product_shares.shared_with_user_id = (current_setting('app.current_user_id'::text, true))::uuid) AND (product_shares.permission = ANY (ARRAY['edit'::text, 'admin'::text]))))))));


--
-- Name: user_preferences Users can update own preferences; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can update own preferences" ON public.user_preferences FOR UPDATE USING ((user_id = (current_setting('app.current_user_id'::text, true))::uuid)) WITH CHECK ((user_id = (current_setting('app.current_user_id'::text, true))::uuid));


--
-- Name: user_profiles Users can update own profile; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can update own profile" ON public.user_profiles FOR UPDATE USING ((id = (current_setting('app.current_user_id'::text, true))::uuid)) WITH CHECK ((id = (current_setting('app.current_user_id'::text, true))::uuid));


--
-- Name: phase_submissions Users can update phase submissions; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can update phase submissions" ON public.phase_submissions FOR UPDATE USING (((tenant_id IN ( SELECT user_profiles.tenant_id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))) AND ((user_id = (current_setting('app.current_user_id'::text, true))::uuid) OR (product_id IN ( SELECT product_shares.product_id
   FROM public.product_shares
  WHERE ((product_shares.shared_with_user_id = (current_setting('app.current_user_id'::text, true))::uuid) AND (product_shares.permission = ANY (ARRAY['edit'::text, 'admin'::text])))))))) WITH CHECK (((tenant_id IN ( SELECT user_profiles.tenant_id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))) AND ((user_id = (current_setting('app.current_user_id'::text, true))::uuid) OR (product_id IN ( SELECT product_shares.product_id
   FROM public.product_shares
  WHERE ((product_shares.shared_with_user_id = (current_setting('app.current_user_id'::text, true))::uuid) AND (product_shares.permission = ANY (ARRAY['edit'::text, 'admin'::text]))))))));


--
-- Name: user_preferences Users can view own preferences; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can view own preferences" ON public.user_preferences FOR SELECT USING ((user_id = (current_setting('app.current_user_id'::text, true))::uuid));


--
-- Name: tenants Users can view own tenant; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can view own tenant" ON public.tenants FOR SELECT USING ((id IN ( SELECT user_profiles.tenant_id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))));


--
-- Name: user_profiles Users can view same tenant profiles; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can view same tenant profiles" ON public.user_profiles FOR SELECT USING ((tenant_id IN ( SELECT user_profiles_1.tenant_id
   FROM public.user_profiles user_profiles_1
  WHERE (user_profiles_1.id = (current_setting('app.current_user_id'::text, true))::uuid))));


--
-- Name: product_shares Users can view shares for accessible products; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can view shares for accessible products" ON public.product_shares FOR SELECT USING ((product_id IN ( SELECT products.id
   FROM public.products
  WHERE ((products.tenant_id IN ( SELECT user_profiles.tenant_id
           FROM public.user_profiles
          WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))) AND ((products.user_id = (current_setting('app.current_user_id'::text, true))::uuid) OR (products.id IN ( SELECT product_shares_1.product_id
           FROM public.product_shares product_shares_1
          WHERE (product_shares_1.shared_with_user_id = (current_setting('app.current_user_id'::text, true))::uuid))))))));


--
-- Name: design_mockups Users can view tenant design mockups; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can view tenant design mockups" ON public.design_mockups FOR SELECT USING (((tenant_id IN ( SELECT user_profiles.tenant_id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))) AND ((user_id = (current_setting('app.current_user_id'::text, true))::uuid) OR (product_id IN ( SELECT product_shares.product_id
   FROM public.product_shares
  WHERE (product_shares.shared_with_user_id = (current_setting('app.current_user_id'::text, true))::uuid))))));


--
-- Name: phase_submissions Users can view tenant phase submissions; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can view tenant phase submissions" ON public.phase_submissions FOR SELECT USING (((tenant_id IN ( SELECT user_profiles.tenant_id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))) AND ((user_id = (current_setting('app.current_user_id'::text, true))::uuid) OR (product_id IN ( SELECT product_shares.product_id
   FROM public.product_shares
  WHERE (product_shares.shared_with_user_id = (current_setting('app.current_user_id'::text, true))::uuid))))));


--
-- Name: products Users can view tenant products; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "Users can view tenant products" ON public.products FOR SELECT USING (((tenant_id IN ( SELECT user_profiles.tenant_id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))) AND ((user_id = (current_setting('app.current_user_id'::text, true))::uuid) OR (id IN ( SELECT product_shares.product_id
   FROM public.product_shares
  WHERE (product_shares.shared_with_user_id = (current_setting('app.current_user_id'::text, true))::uuid))))));


--
-- Name: agent_activity_log; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.agent_activity_log ENABLE ROW LEVEL SECURITY;

--
-- Name: agent_interactions; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.agent_interactions ENABLE ROW LEVEL SECURITY;

--
-- Name: agent_messages; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.agent_messages ENABLE ROW LEVEL SECURITY;

--
-- Name: conversation_history; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.conversation_history ENABLE ROW LEVEL SECURITY;

--
-- Name: conversation_sessions; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.conversation_sessions ENABLE ROW LEVEL SECURITY;

--
-- Name: design_mockups; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.design_mockups ENABLE ROW LEVEL SECURITY;

--
-- Name: exported_documents; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.exported_documents ENABLE ROW LEVEL SECURITY;

--
-- Name: feedback_entries; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.feedback_entries ENABLE ROW LEVEL SECURITY;

--
-- Name: knowledge_articles; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.knowledge_articles ENABLE ROW LEVEL SECURITY;

--
-- Name: multi_agent_sessions; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.multi_agent_sessions ENABLE ROW LEVEL SECURITY;

--
-- Name: phase_submissions; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.phase_submissions ENABLE ROW LEVEL SECURITY;

--
-- Name: prd_documents; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.prd_documents ENABLE ROW LEVEL SECURITY;

--
-- Name: product_lifecycle_phases; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.product_lifecycle_phases ENABLE ROW LEVEL SECURITY;

--
-- Name: product_shares; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.product_shares ENABLE ROW LEVEL SECURITY;

--
-- Name: products; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.products ENABLE ROW LEVEL SECURITY;

--
-- Name: review_reports; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.review_reports ENABLE ROW LEVEL SECURITY;

--
-- Name: tenants; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.tenants ENABLE ROW LEVEL SECURITY;

--
-- Name: user_api_keys; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.user_api_keys ENABLE ROW LEVEL SECURITY;

--
-- Name: user_api_keys user_api_keys_delete; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY user_api_keys_delete ON public.user_api_keys FOR DELETE USING ((user_id = ( SELECT user_profiles.id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))));


--
-- Name: user_api_keys user_api_keys_insert; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY user_api_keys_insert ON public.user_api_keys FOR INSERT WITH CHECK ((user_id = ( SELECT user_profiles.id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))));


--
-- Name: user_api_keys user_api_keys_select; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY user_api_keys_select ON public.user_api_keys FOR SELECT USING ((user_id = ( SELECT user_profiles.id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))));


--
-- Name: user_api_keys user_api_keys_update; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY user_api_keys_update ON public.user_api_keys FOR UPDATE USING ((user_id = ( SELECT user_profiles.id
   FROM public.user_profiles
  WHERE (user_profiles.id = (current_setting('app.current_user_id'::text, true))::uuid))));


--
-- Name: user_preferences; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.user_preferences ENABLE ROW LEVEL SECURITY;

--
-- Name: user_profiles; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.user_profiles ENABLE ROW LEVEL SECURITY;

--
-- PostgreSQL database dump complete
--



--
-- PostgreSQL database dump
--


-- Dumped from database version 18.6
-- Dumped by pg_dump version 18.6

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Data for Name: schema_migrations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.schema_migrations VALUES (1, '20251121222242_create_enterprise_platform_schema.sql', '2026-12-01 17:36:54.853193+00');
INSERT INTO public.schema_migrations VALUES (2, '20251121223018_allow_anonymous_knowledge_access.sql', '2026-12-01 17:36:55.181338+00');
INSERT INTO public.schema_migrations VALUES (3, '20251121223330_fix_security_performance_issues.sql', '2026-12-01 17:36:55.373696+00');
INSERT INTO public.schema_migrations VALUES (4, '20251121223707_add_agent_interaction_support.sql', '2026-12-01 17:36:55.73516+00');
INSERT INTO public.schema_migrations VALUES (5, '20251122095423_add_product_lifecycle_and_history.sql', '2026-12-01 17:36:55.991211+00');
INSERT INTO public.schema_migrations VALUES (6, '20251124000000_add_design_mockups.sql', '2026-12-01 17:36:56.355179+00');
INSERT INTO public.schema_migrations VALUES (7, '20251124000001_user_management_tenants.sql', '2026-12-01 17:36:56.586023+00');
INSERT INTO public.schema_migrations VALUES (8, '20251124000002_fix_rls_policies_remove_roles.sql', '2026-12-01 17:36:56.803149+00');
INSERT INTO public.schema_migrations VALUES (9, '20251124000002_user_api_keys.sql', '2026-12-01 17:36:57.063171+00');
INSERT INTO public.schema_migrations VALUES (10, '20251124000003_user_api_keys.sql', '2026-12-01 17:36:57.395169+00');
INSERT INTO public.schema_migrations VALUES (11, '20251124000004_product_scoring.sql', '2026-12-01 17:36:57.723606+00');
INSERT INTO public.schema_migrations VALUES (12, '20251125000001_user_management_tenants.sql', '2026-12-01 17:36:57.954746+00');
INSERT INTO public.schema_migrations VALUES (13, '20251126000001_fix_missing_tables_and_columns.sql', '2026-12-01 17:36:58.253701+00');
INSERT INTO public.schema_migrations VALUES (14, '20251128000000_add_v0_project_tracking.sql', '2026-12-01 17:36:58.703216+00');
INSERT INTO public.schema_migrations VALUES (15, '20251128000001_add_review_reports.sql', '2026-12-01 17:36:59.003142+00');
INSERT INTO public.schema_migrations VALUES (16, '20251130000000_fix_knowledge_articles_source_constraint.sql', '2026-12-01 17:36:59.214466+00');
INSERT INTO public.schema_migrations VALUES (17, '20251201000001_add_ai_gateway_provider.sql', '2026-12-01 17:36:59.473477+00');
INSERT INTO public.schema_migrations VALUES (18, '20251202000000_add_mckinsey_sso_fields.sql', '2026-12-01 17:36:59.753194+00');


--
-- Name: schema_migrations_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.schema_migrations_id_seq', 18, true);


--
-- PostgreSQL database dump complete
--


