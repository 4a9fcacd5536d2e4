<?xml version="1.0" encoding="UTF-8"?>
<!--
  Carnet's rendering of an HL7 CDA R2 document (namespace urn:hl7-org:v3) for the portals'
  document viewer. Written for Carnet; not derived from HL7's CDA.xsl.

  Safety rests on three things, all of them kept here on purpose:
  - nothing of the document is ever copied as markup: every value reaches the output through
    xsl:value-of or a text node, so the HTML serialiser escapes it;
  - only the elements below are produced, with class attributes chosen from a fixed list and no
    href, src, style or event attribute at all (linkHtml becomes text plus its URL as text);
  - the stylesheet reads nothing but its input (document() is never called, and the caller runs
    it with XSLTAccessControl.DENY_ALL).
  document_cda.py walks the result once more with an allow-list before it reaches a page.

  Labels come in as parameters, in the visitor's language; carnet:timestamp() (an extension
  function of document_cda.py) formats an HL7 TS value for that language.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:v="urn:hl7-org:v3"
    xmlns:carnet="urn:carnet:document-view"
    exclude-result-prefixes="v carnet">

  <xsl:output method="html" encoding="UTF-8" indent="no"/>

  <xsl:param name="language" select="'en'"/>
  <xsl:param name="label_untitled_document" select="'Clinical document'"/>
  <xsl:param name="label_untitled_section" select="'Untitled section'"/>
  <xsl:param name="label_date" select="'Date'"/>
  <xsl:param name="label_patient" select="'Patient'"/>
  <xsl:param name="label_birth_date" select="'Birth date'"/>
  <xsl:param name="label_gender" select="'Gender'"/>
  <xsl:param name="label_identifiers" select="'Identifiers'"/>
  <xsl:param name="label_author" select="'Author'"/>
  <xsl:param name="label_legal_authenticator" select="'Signed by'"/>
  <xsl:param name="label_custodian" select="'Custodian'"/>
  <xsl:param name="label_encounter" select="'Encounter'"/>
  <xsl:param name="label_location" select="'Location'"/>
  <xsl:param name="label_responsible" select="'Responsible'"/>
  <xsl:param name="label_male" select="'Male'"/>
  <xsl:param name="label_female" select="'Female'"/>
  <xsl:param name="label_undifferentiated" select="'Undifferentiated'"/>
  <xsl:param name="label_body" select="'Content'"/>
  <xsl:param name="label_attachment_body" select="'The content of this document is an attached file that cannot be shown here: download the document to read it.'"/>
  <xsl:param name="label_multimedia" select="'Multimedia content not shown'"/>
  <!-- The text of a base64 text/plain nonXMLBody, decoded by the caller (XSLT 1.0 cannot). -->
  <xsl:param name="embedded_text" select="''"/>

  <xsl:variable name="upper" select="'ABCDEFGHIJKLMNOPQRSTUVWXYZ'"/>
  <xsl:variable name="lower" select="'abcdefghijklmnopqrstuvwxyz'"/>

  <xsl:template match="/">
    <xsl:apply-templates select="v:ClinicalDocument"/>
  </xsl:template>

  <!-- ===================================================================== header -->

  <xsl:template match="v:ClinicalDocument">
    <article class="rendered-document cda-document">
      <header class="doc-header">
        <h2>
          <xsl:choose>
            <xsl:when test="normalize-space(v:title)">
              <xsl:value-of select="normalize-space(v:title)"/>
            </xsl:when>
            <xsl:when test="normalize-space(v:code/@displayName)">
              <xsl:value-of select="normalize-space(v:code/@displayName)"/>
            </xsl:when>
            <xsl:otherwise><xsl:value-of select="$label_untitled_document"/></xsl:otherwise>
          </xsl:choose>
        </h2>
        <dl class="facts">
          <xsl:if test="v:effectiveTime/@value">
            <dt><xsl:value-of select="$label_date"/></dt>
            <dd><xsl:value-of select="carnet:timestamp(string(v:effectiveTime/@value), $language)"/></dd>
          </xsl:if>
          <xsl:apply-templates select="v:recordTarget/v:patientRole"/>
          <xsl:if test="v:author">
            <dt><xsl:value-of select="$label_author"/></dt>
            <xsl:apply-templates select="v:author"/>
          </xsl:if>
          <xsl:for-each select="v:legalAuthenticator/v:assignedEntity">
            <dt><xsl:value-of select="$label_legal_authenticator"/></dt>
            <dd>
              <xsl:call-template name="party">
                <xsl:with-param name="person" select="v:assignedPerson/v:name[1]"/>
                <xsl:with-param name="organization" select="v:representedOrganization/v:name[1]"/>
                <xsl:with-param name="time" select="../v:time/@value"/>
              </xsl:call-template>
            </dd>
          </xsl:for-each>
          <xsl:for-each select="v:custodian/v:assignedCustodian/v:representedCustodianOrganization[v:name]">
            <dt><xsl:value-of select="$label_custodian"/></dt>
            <dd><xsl:value-of select="normalize-space(v:name[1])"/></dd>
          </xsl:for-each>
          <xsl:apply-templates select="v:componentOf/v:encompassingEncounter"/>
        </dl>
      </header>
      <xsl:apply-templates select="v:component/v:structuredBody/v:component/v:section">
        <xsl:with-param name="level" select="3"/>
      </xsl:apply-templates>
      <xsl:apply-templates select="v:component/v:nonXMLBody"/>
    </article>
  </xsl:template>

  <xsl:template match="v:patientRole">
    <dt><xsl:value-of select="$label_patient"/></dt>
    <dd>
      <xsl:call-template name="person-name">
        <xsl:with-param name="name" select="v:patient/v:name[1]"/>
      </xsl:call-template>
    </dd>
    <xsl:if test="v:patient/v:birthTime/@value">
      <dt><xsl:value-of select="$label_birth_date"/></dt>
      <dd><xsl:value-of select="carnet:timestamp(string(v:patient/v:birthTime/@value), $language)"/></dd>
    </xsl:if>
    <xsl:for-each select="v:patient/v:administrativeGenderCode[@code or @displayName]">
      <dt><xsl:value-of select="$label_gender"/></dt>
      <dd>
        <xsl:choose>
          <xsl:when test="@code = 'M'"><xsl:value-of select="$label_male"/></xsl:when>
          <xsl:when test="@code = 'F'"><xsl:value-of select="$label_female"/></xsl:when>
          <xsl:when test="@code = 'UN'"><xsl:value-of select="$label_undifferentiated"/></xsl:when>
          <xsl:when test="@displayName"><xsl:value-of select="@displayName"/></xsl:when>
          <xsl:otherwise><xsl:value-of select="@code"/></xsl:otherwise>
        </xsl:choose>
      </dd>
    </xsl:for-each>
    <xsl:if test="v:id[not(@nullFlavor)][@root or @extension]">
      <dt><xsl:value-of select="$label_identifiers"/></dt>
      <xsl:for-each select="v:id[not(@nullFlavor)][@root or @extension]">
        <dd>
          <xsl:choose>
            <xsl:when test="@extension">
              <xsl:value-of select="@extension"/>
              <xsl:if test="@root">
                <xsl:text> </xsl:text>
                <span class="muted">(<xsl:value-of select="@root"/>)</span>
              </xsl:if>
            </xsl:when>
            <xsl:otherwise><xsl:value-of select="@root"/></xsl:otherwise>
          </xsl:choose>
        </dd>
      </xsl:for-each>
    </xsl:if>
  </xsl:template>

  <xsl:template match="v:author">
    <dd>
      <xsl:call-template name="party">
        <xsl:with-param name="person" select="v:assignedAuthor/v:assignedPerson/v:name[1]"/>
        <xsl:with-param name="device" select="v:assignedAuthor/v:assignedAuthoringDevice"/>
        <xsl:with-param name="organization" select="v:assignedAuthor/v:representedOrganization/v:name[1]"/>
        <xsl:with-param name="time" select="v:time/@value"/>
      </xsl:call-template>
    </dd>
  </xsl:template>

  <xsl:template match="v:encompassingEncounter">
    <dt><xsl:value-of select="$label_encounter"/></dt>
    <dd>
      <xsl:variable name="what">
        <xsl:choose>
          <xsl:when test="normalize-space(v:code/@displayName)">
            <xsl:value-of select="normalize-space(v:code/@displayName)"/>
          </xsl:when>
          <xsl:otherwise><xsl:value-of select="normalize-space(v:code/v:originalText)"/></xsl:otherwise>
        </xsl:choose>
      </xsl:variable>
      <xsl:variable name="when">
        <xsl:call-template name="period">
          <xsl:with-param name="time" select="v:effectiveTime"/>
        </xsl:call-template>
      </xsl:variable>
      <xsl:value-of select="$what"/>
      <xsl:if test="$what != '' and $when != ''">, </xsl:if>
      <xsl:value-of select="$when"/>
    </dd>
    <xsl:for-each select="v:location/v:healthCareFacility[v:location/v:name or v:serviceProviderOrganization/v:name]">
      <dt><xsl:value-of select="$label_location"/></dt>
      <dd>
        <xsl:value-of select="normalize-space(v:location/v:name)"/>
        <xsl:if test="v:location/v:name and v:serviceProviderOrganization/v:name">, </xsl:if>
        <xsl:value-of select="normalize-space(v:serviceProviderOrganization/v:name)"/>
      </dd>
    </xsl:for-each>
    <xsl:for-each select="v:responsibleParty/v:assignedEntity">
      <dt><xsl:value-of select="$label_responsible"/></dt>
      <dd>
        <xsl:call-template name="party">
          <xsl:with-param name="person" select="v:assignedPerson/v:name[1]"/>
          <xsl:with-param name="organization" select="v:representedOrganization/v:name[1]"/>
        </xsl:call-template>
      </dd>
    </xsl:for-each>
  </xsl:template>

  <!-- "Name, Organization, date": whichever parts the document gives. -->
  <xsl:template name="party">
    <xsl:param name="person" select="/.."/>
    <xsl:param name="device" select="/.."/>
    <xsl:param name="organization" select="/.."/>
    <xsl:param name="time" select="/.."/>
    <xsl:variable name="who">
      <xsl:choose>
        <xsl:when test="$person">
          <xsl:call-template name="person-name">
            <xsl:with-param name="name" select="$person"/>
          </xsl:call-template>
        </xsl:when>
        <xsl:when test="$device">
          <xsl:value-of select="normalize-space(concat($device/v:manufacturerModelName, ' ', $device/v:softwareName))"/>
        </xsl:when>
      </xsl:choose>
    </xsl:variable>
    <xsl:variable name="where" select="normalize-space($organization)"/>
    <xsl:value-of select="$who"/>
    <xsl:if test="$who != '' and $where != ''">, </xsl:if>
    <xsl:value-of select="$where"/>
    <xsl:if test="string($time) != ''">
      <xsl:if test="$who != '' or $where != ''">, </xsl:if>
      <xsl:value-of select="carnet:timestamp(string($time), $language)"/>
    </xsl:if>
  </xsl:template>

  <!-- A person name (PN): prefixes, given names, family names, suffixes; else its text. -->
  <xsl:template name="person-name">
    <xsl:param name="name"/>
    <xsl:choose>
      <xsl:when test="$name/v:given or $name/v:family">
        <xsl:variable name="parts">
          <xsl:for-each select="$name/v:prefix | $name/v:given">
            <xsl:value-of select="."/><xsl:text> </xsl:text>
          </xsl:for-each>
          <xsl:for-each select="$name/v:family">
            <xsl:value-of select="."/><xsl:text> </xsl:text>
          </xsl:for-each>
          <xsl:for-each select="$name/v:suffix">
            <xsl:value-of select="."/><xsl:text> </xsl:text>
          </xsl:for-each>
        </xsl:variable>
        <xsl:value-of select="normalize-space($parts)"/>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="normalize-space($name)"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- A point in time (@value) or an interval (low – high). -->
  <xsl:template name="period">
    <xsl:param name="time"/>
    <xsl:choose>
      <xsl:when test="$time/@value">
        <xsl:value-of select="carnet:timestamp(string($time/@value), $language)"/>
      </xsl:when>
      <xsl:when test="$time/v:low/@value or $time/v:high/@value">
        <xsl:if test="$time/v:low/@value">
          <xsl:value-of select="carnet:timestamp(string($time/v:low/@value), $language)"/>
        </xsl:if>
        <xsl:text> – </xsl:text>
        <xsl:if test="$time/v:high/@value">
          <xsl:value-of select="carnet:timestamp(string($time/v:high/@value), $language)"/>
        </xsl:if>
      </xsl:when>
    </xsl:choose>
  </xsl:template>

  <!-- ===================================================================== body -->

  <xsl:template match="v:section">
    <xsl:param name="level" select="3"/>
    <section class="doc-section">
      <xsl:element name="{concat('h', $level)}">
        <xsl:choose>
          <xsl:when test="normalize-space(v:title)">
            <xsl:value-of select="normalize-space(v:title)"/>
          </xsl:when>
          <xsl:when test="normalize-space(v:code/@displayName)">
            <xsl:value-of select="normalize-space(v:code/@displayName)"/>
          </xsl:when>
          <xsl:otherwise><xsl:value-of select="$label_untitled_section"/></xsl:otherwise>
        </xsl:choose>
      </xsl:element>
      <xsl:if test="v:text">
        <div class="doc-narrative">
          <xsl:apply-templates select="v:text/node()" mode="narrative"/>
        </div>
      </xsl:if>
      <!-- HTML has six heading levels: deeper sections stay at h6. -->
      <xsl:apply-templates select="v:component/v:section">
        <xsl:with-param name="level">
          <xsl:choose>
            <xsl:when test="$level &lt; 6"><xsl:value-of select="$level + 1"/></xsl:when>
            <xsl:otherwise>6</xsl:otherwise>
          </xsl:choose>
        </xsl:with-param>
      </xsl:apply-templates>
    </section>
  </xsl:template>

  <xsl:template match="v:nonXMLBody">
    <section class="doc-section">
      <h3><xsl:value-of select="$label_body"/></h3>
      <xsl:variable name="media" select="translate(normalize-space(v:text/@mediaType), $upper, $lower)"/>
      <xsl:choose>
        <xsl:when test="$embedded_text != ''">
          <pre class="doc-embedded-text"><xsl:value-of select="$embedded_text"/></pre>
        </xsl:when>
        <xsl:when test="($media = '' or starts-with($media, 'text/plain'))
                        and not(v:text/@representation = 'B64')
                        and not(v:text/v:reference)
                        and normalize-space(v:text) != ''">
          <pre class="doc-embedded-text"><xsl:value-of select="v:text"/></pre>
        </xsl:when>
        <xsl:otherwise>
          <p class="doc-placeholder">
            <xsl:value-of select="$label_attachment_body"/>
            <xsl:if test="$media != ''">
              <xsl:text> </xsl:text>
              <span class="muted">(<xsl:value-of select="$media"/>)</span>
            </xsl:if>
          </p>
        </xsl:otherwise>
      </xsl:choose>
    </section>
  </xsl:template>

  <!-- ============================================================ narrative block
       Text nodes are copied by the built-in rule (escaped on output); elements not named
       below show their text only; comments and processing instructions show nothing. -->

  <xsl:template match="v:paragraph" mode="narrative">
    <xsl:choose>
      <!-- A paragraph holding a list or table cannot be an HTML <p>. -->
      <xsl:when test=".//v:list or .//v:table or .//v:paragraph">
        <div class="doc-paragraph">
          <xsl:call-template name="style-class"/>
          <xsl:apply-templates mode="narrative"/>
        </div>
      </xsl:when>
      <xsl:otherwise>
        <p>
          <xsl:call-template name="style-class"/>
          <xsl:apply-templates mode="narrative"/>
        </p>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="v:caption" mode="narrative">
    <strong class="doc-caption"><xsl:apply-templates mode="narrative"/></strong>
    <xsl:text> </xsl:text>
  </xsl:template>

  <xsl:template match="v:list" mode="narrative">
    <xsl:for-each select="v:caption">
      <p class="doc-caption"><strong><xsl:apply-templates mode="narrative"/></strong></p>
    </xsl:for-each>
    <xsl:choose>
      <xsl:when test="@listType = 'ordered'">
        <ol>
          <xsl:call-template name="style-class"/>
          <xsl:apply-templates select="v:item" mode="narrative"/>
        </ol>
      </xsl:when>
      <xsl:otherwise>
        <ul>
          <xsl:call-template name="style-class"/>
          <xsl:apply-templates select="v:item" mode="narrative"/>
        </ul>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="v:item" mode="narrative">
    <li>
      <xsl:call-template name="style-class"/>
      <xsl:apply-templates mode="narrative"/>
    </li>
  </xsl:template>

  <xsl:template match="v:table" mode="narrative">
    <div class="table-wrap">
      <table>
        <xsl:call-template name="style-class"/>
        <xsl:for-each select="v:caption">
          <caption><xsl:apply-templates mode="narrative"/></caption>
        </xsl:for-each>
        <xsl:apply-templates select="v:thead | v:tbody | v:tfoot | v:tr" mode="narrative"/>
      </table>
    </div>
  </xsl:template>

  <xsl:template match="v:thead" mode="narrative">
    <thead><xsl:apply-templates select="v:tr" mode="narrative"/></thead>
  </xsl:template>

  <xsl:template match="v:tbody" mode="narrative">
    <tbody><xsl:apply-templates select="v:tr" mode="narrative"/></tbody>
  </xsl:template>

  <xsl:template match="v:tfoot" mode="narrative">
    <tfoot><xsl:apply-templates select="v:tr" mode="narrative"/></tfoot>
  </xsl:template>

  <xsl:template match="v:tr" mode="narrative">
    <tr>
      <xsl:call-template name="style-class"/>
      <xsl:apply-templates select="v:th | v:td" mode="narrative"/>
    </tr>
  </xsl:template>

  <!-- Header cells get a scope; a data cell in a header row is a column header. -->
  <xsl:template match="v:th | v:thead/v:tr/v:td" mode="narrative">
    <th>
      <xsl:attribute name="scope">
        <xsl:choose>
          <xsl:when test="ancestor::v:thead">col</xsl:when>
          <xsl:otherwise>row</xsl:otherwise>
        </xsl:choose>
      </xsl:attribute>
      <xsl:call-template name="cell-span"/>
      <xsl:call-template name="style-class"/>
      <xsl:apply-templates mode="narrative"/>
    </th>
  </xsl:template>

  <xsl:template match="v:td" mode="narrative">
    <td>
      <xsl:call-template name="cell-span"/>
      <xsl:call-template name="style-class"/>
      <xsl:apply-templates mode="narrative"/>
    </td>
  </xsl:template>

  <xsl:template name="cell-span">
    <xsl:if test="@colspan and floor(@colspan) &gt;= 1 and floor(@colspan) &lt;= 1000">
      <xsl:attribute name="colspan"><xsl:value-of select="floor(@colspan)"/></xsl:attribute>
    </xsl:if>
    <xsl:if test="@rowspan and floor(@rowspan) &gt;= 1 and floor(@rowspan) &lt;= 1000">
      <xsl:attribute name="rowspan"><xsl:value-of select="floor(@rowspan)"/></xsl:attribute>
    </xsl:if>
  </xsl:template>

  <xsl:template match="v:content" mode="narrative">
    <xsl:choose>
      <xsl:when test="@revised = 'delete'">
        <del><xsl:call-template name="styled-content"/></del>
      </xsl:when>
      <xsl:when test="@revised = 'insert'">
        <ins><xsl:call-template name="styled-content"/></ins>
      </xsl:when>
      <xsl:otherwise><xsl:call-template name="styled-content"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- Inline emphasis as elements (not only classes), so it survives without the stylesheet
       and reaches assistive technologies. -->
  <xsl:template name="styled-content">
    <xsl:param name="style" select="concat(' ', normalize-space(@styleCode), ' ')"/>
    <xsl:choose>
      <xsl:when test="contains($style, ' Bold ')">
        <strong>
          <xsl:call-template name="styled-content">
            <xsl:with-param name="style" select="concat(substring-before($style, ' Bold '), ' ', substring-after($style, ' Bold '))"/>
          </xsl:call-template>
        </strong>
      </xsl:when>
      <xsl:when test="contains($style, ' Italics ') or contains($style, ' Emphasis ')">
        <em>
          <xsl:call-template name="styled-content">
            <xsl:with-param name="style">
              <xsl:choose>
                <xsl:when test="contains($style, ' Italics ')">
                  <xsl:value-of select="concat(substring-before($style, ' Italics '), ' ', substring-after($style, ' Italics '))"/>
                </xsl:when>
                <xsl:otherwise>
                  <xsl:value-of select="concat(substring-before($style, ' Emphasis '), ' ', substring-after($style, ' Emphasis '))"/>
                </xsl:otherwise>
              </xsl:choose>
            </xsl:with-param>
          </xsl:call-template>
        </em>
      </xsl:when>
      <xsl:when test="contains($style, ' Underline ')">
        <u>
          <xsl:call-template name="styled-content">
            <xsl:with-param name="style" select="concat(substring-before($style, ' Underline '), ' ', substring-after($style, ' Underline '))"/>
          </xsl:call-template>
        </u>
      </xsl:when>
      <xsl:otherwise><xsl:apply-templates mode="narrative"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- Block-level styleCodes (rules, list markers, emphasis) as classes from a fixed list:
       nothing of the attribute's own text reaches the output. -->
  <xsl:template name="style-class">
    <xsl:variable name="style" select="concat(' ', normalize-space(@styleCode), ' ')"/>
    <xsl:variable name="classes">
      <xsl:if test="contains($style, ' Bold ')"> cda-bold</xsl:if>
      <xsl:if test="contains($style, ' Italics ')"> cda-italics</xsl:if>
      <xsl:if test="contains($style, ' Underline ')"> cda-underline</xsl:if>
      <xsl:if test="contains($style, ' Emphasis ')"> cda-emphasis</xsl:if>
      <xsl:if test="contains($style, ' Lrule ')"> cda-lrule</xsl:if>
      <xsl:if test="contains($style, ' Rrule ')"> cda-rrule</xsl:if>
      <xsl:if test="contains($style, ' Toprule ')"> cda-toprule</xsl:if>
      <xsl:if test="contains($style, ' Botrule ')"> cda-botrule</xsl:if>
      <xsl:if test="contains($style, ' Arabic ')"> cda-arabic</xsl:if>
      <xsl:if test="contains($style, ' LittleRoman ')"> cda-littleroman</xsl:if>
      <xsl:if test="contains($style, ' BigRoman ')"> cda-bigroman</xsl:if>
      <xsl:if test="contains($style, ' LittleAlpha ')"> cda-littlealpha</xsl:if>
      <xsl:if test="contains($style, ' BigAlpha ')"> cda-bigalpha</xsl:if>
      <xsl:if test="contains($style, ' Disc ')"> cda-disc</xsl:if>
      <xsl:if test="contains($style, ' Circle ')"> cda-circle</xsl:if>
      <xsl:if test="contains($style, ' Square ')"> cda-square</xsl:if>
    </xsl:variable>
    <xsl:if test="normalize-space($classes) != ''">
      <xsl:attribute name="class"><xsl:value-of select="normalize-space($classes)"/></xsl:attribute>
    </xsl:if>
  </xsl:template>

  <xsl:template match="v:br" mode="narrative"><br/></xsl:template>

  <xsl:template match="v:sub" mode="narrative">
    <sub><xsl:apply-templates mode="narrative"/></sub>
  </xsl:template>

  <xsl:template match="v:sup" mode="narrative">
    <sup><xsl:apply-templates mode="narrative"/></sup>
  </xsl:template>

  <!-- A link is never followed from the viewer: its text, then its address as text when it is
       a web or mail address (a fragment such as #problem1 points into the CDA and means
       nothing here; any other scheme, javascript: included, is not shown at all). -->
  <xsl:template match="v:linkHtml" mode="narrative">
    <xsl:apply-templates mode="narrative"/>
    <xsl:variable name="href" select="normalize-space(@href)"/>
    <xsl:variable name="scheme" select="translate(substring-before($href, ':'), $upper, $lower)"/>
    <xsl:if test="($scheme = 'http' or $scheme = 'https' or $scheme = 'mailto' or $scheme = 'tel')
                  and normalize-space(.) != $href">
      <xsl:text> </xsl:text>
      <span class="doc-link-url">(<xsl:value-of select="$href"/>)</span>
    </xsl:if>
  </xsl:template>

  <xsl:template match="v:footnote" mode="narrative">
    <span class="doc-footnote">[<xsl:apply-templates mode="narrative"/>]</span>
  </xsl:template>

  <xsl:template match="v:footnoteRef" mode="narrative"/>

  <xsl:template match="v:renderMultiMedia" mode="narrative">
    <span class="doc-placeholder">
      <xsl:text>[</xsl:text>
      <xsl:value-of select="$label_multimedia"/>
      <xsl:if test="normalize-space(v:caption)">
        <xsl:text>: </xsl:text>
        <xsl:value-of select="normalize-space(v:caption)"/>
      </xsl:if>
      <xsl:text>]</xsl:text>
    </span>
  </xsl:template>

  <xsl:template match="v:col | v:colgroup" mode="narrative"/>

  <!-- Not CDA narrative at all: a script or style element (in any namespace) and anything
       from a foreign namespace are dropped with their content. -->
  <xsl:template match="*[local-name() = 'script' or local-name() = 'style']" mode="narrative" priority="2"/>
  <xsl:template match="*[namespace-uri() != 'urn:hl7-org:v3']" mode="narrative" priority="1"/>

</xsl:stylesheet>
